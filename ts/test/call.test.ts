/**
 * Functions against a live broker: exposing and calling (sync and async handlers, many calls in
 * flight, raw datums), every error a caller can meet, and a provider killed under a pending call
 * (PeerGone within a second, not a timeout). Each test has its own namespace.
 */

import { afterEach, beforeEach, expect, test } from "bun:test";

import {
  Closed,
  Connection,
  HandlerError,
  InvalidArgument,
  NameTaken,
  PeerGone,
  SchemaMismatch,
  Timeout,
  UnknownFunction,
  WrongKey,
} from "../src/index.ts";
import { Broker, segments, testee, waitLine } from "./broker.ts";

interface AddRequest {
  a: number;
  b: number;
}
interface AddResponse {
  sum: number;
}
const ADD_REQUEST = {
  type: "record",
  name: "AddRequest",
  namespace: "e2e",
  fields: [
    { name: "a", type: "long" },
    { name: "b", type: "long" },
  ],
};
const ADD_RESPONSE = { type: "record", name: "AddResponse", namespace: "e2e", fields: [{ name: "sum", type: "long" }] };
const SCHEMAS = { requestSchema: ADD_REQUEST, responseSchema: ADD_RESPONSE };

/** The error a promise rejects with (undefined if it resolves). Bun's `expect(p).rejects` starves
 * the event loop while it waits, so promises that timers settle are awaited here instead. */
async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

let broker: Broker;
let provider: Connection;
let caller: Connection;

beforeEach(async () => {
  broker = await Broker.start("call");
  provider = await Connection.connect("ts-provider", { namespace: broker.ns });
  caller = await Connection.connect("ts-caller", { namespace: broker.ns });
});

afterEach(async () => {
  // After a connect that failed in beforeEach these are undefined or a previous test's (closed; close
  // is idempotent): the broker is stopped either way.
  caller?.close();
  provider?.close();
  expect(await broker.stop()).toBe(0);
  expect(segments(broker.ns)).toEqual([]);
});

const add = (req: AddRequest): AddResponse => {
  if (req.a === 7) throw new Error(`refusing a = ${req.a}`);
  return { sum: req.a + req.b };
};

test("calls resolve with the handler's response, many in flight at once", async () => {
  await provider.exposeFunction<AddRequest, AddResponse>("add", ADD_REQUEST, ADD_RESPONSE, add);
  expect((await caller.call<AddRequest, AddResponse>("add", { a: 2, b: 3 }, SCHEMAS)).sum).toBe(5);
  const sums = await Promise.all(
    Array.from({ length: 200 }, (_, i) => caller.call<AddRequest, AddResponse>("add", { a: 100 + i, b: i }, SCHEMAS)),
  );
  expect(sums.map((r) => r.sum)).toEqual(Array.from({ length: 200 }, (_, i) => 100 + 2 * i));
});

test("an async handler that settles at once answers, and a connection calls itself", async () => {
  await provider.exposeFunction<AddRequest, AddResponse>("async-add", ADD_REQUEST, ADD_RESPONSE, async (req) => ({
    sum: req.a * req.b,
  }));
  expect((await caller.call<AddRequest, AddResponse>("async-add", { a: 6, b: 7 }, SCHEMAS)).sum).toBe(42);
  expect((await provider.call<AddRequest, AddResponse>("async-add", { a: 3, b: 3 }, SCHEMAS)).sum).toBe(9);
});

test("raw calls carry Avro datums both ways", async () => {
  await provider.exposeFunction<AddRequest, AddResponse>("add", ADD_REQUEST, ADD_RESPONSE, add);
  // {a: 1, b: 2} as zig-zag varints; the response {sum: 3} is the single byte 6.
  const response = await caller.callRaw("add", new Uint8Array([2, 4]), SCHEMAS);
  expect([...response]).toEqual([6]);
});

test("a handler that awaits answers from the worker, many callers in turn", async () => {
  await provider.exposeFunction<AddRequest, AddResponse>("later", ADD_REQUEST, ADD_RESPONSE, async (req) => {
    await Bun.sleep(2);
    return { sum: req.a - req.b };
  });
  const sums = await Promise.all(
    Array.from({ length: 3 }, (_, i) => caller.call<AddRequest, AddResponse>("later", { a: 50, b: i }, SCHEMAS)),
  );
  expect(sums.map((r) => r.sum)).toEqual(Array.from({ length: 3 }, (_, i) => 50 - i));
  await provider.exposeFunction<AddRequest, AddResponse>("reject", ADD_REQUEST, ADD_RESPONSE, async () => {
    await Bun.sleep(1);
    throw new Error("no luck");
  });
  expect(String(await caught(caller.call("reject", { a: 1, b: 1 }, SCHEMAS)))).toMatch("no luck");
});

test("inline functions answer on the JS thread; a pending promise there fails with HandlerError", async () => {
  const inline = { serve: "inline" as const };
  await provider.exposeFunction<AddRequest, AddResponse>("inline-add", ADD_REQUEST, ADD_RESPONSE, add, inline);
  expect((await caller.call<AddRequest, AddResponse>("inline-add", { a: 4, b: 5 }, SCHEMAS)).sum).toBe(9);
  expect(String(await caught(caller.call("inline-add", { a: 7, b: 1 }, SCHEMAS)))).toMatch("refusing a = 7");
  const settled = async (req: AddRequest) => ({ sum: req.a * 10 });
  await provider.exposeFunction<AddRequest, AddResponse>("inline-settled", ADD_REQUEST, ADD_RESPONSE, settled, inline);
  expect((await caller.call<AddRequest, AddResponse>("inline-settled", { a: 4, b: 0 }, SCHEMAS)).sum).toBe(40);
  const waits = async (req: AddRequest) => {
    await Bun.sleep(1);
    return { sum: req.a };
  };
  await provider.exposeFunction<AddRequest, AddResponse>("inline-waits", ADD_REQUEST, ADD_RESPONSE, waits, inline);
  expect(await caught(caller.call("inline-waits", { a: 1, b: 1 }, SCHEMAS))).toBeInstanceOf(HandlerError);
});

test("a handler that throws fails the call with HandlerError and its message", async () => {
  await provider.exposeFunction<AddRequest, AddResponse>("add", ADD_REQUEST, ADD_RESPONSE, add);
  const err: any = await caller.call("add", { a: 7, b: 1 }, SCHEMAS).catch((e: any) => e);
  expect(err).toBeInstanceOf(HandlerError);
  expect(err.code).toBe(17);
  expect(err.message).toContain("refusing a = 7");
  // A response that does not fit its schema is the handler's failure too, naming the field.
  await provider.exposeFunction("broken", ADD_REQUEST, ADD_RESPONSE, () => ({ sum: "many" }));
  expect(String(await caught(caller.call("broken", { a: 1, b: 1 }, SCHEMAS)))).toMatch(/`sum`/);
});

test("calling fails with UnknownFunction, WrongKey, SchemaMismatch, InvalidArgument and Timeout", async () => {
  expect(await caught(caller.call("nobody", { a: 1, b: 2 }, SCHEMAS))).toBeInstanceOf(UnknownFunction);
  await provider.exposeFunction<AddRequest, AddResponse>("keyed", ADD_REQUEST, ADD_RESPONSE, add, { key: "k3y" });
  expect(await caught(caller.call("keyed", { a: 1, b: 2 }, SCHEMAS))).toBeInstanceOf(WrongKey);
  expect((await caller.call<AddRequest, AddResponse>("keyed", { a: 1, b: 2 }, { ...SCHEMAS, key: "k3y" })).sum).toBe(3);
  const other = { ...SCHEMAS, key: "k3y", responseSchema: { type: "record", name: "R", fields: [] } };
  const mismatch: any = await caller.call("keyed", { a: 1, b: 2 }, other).catch((e: any) => e);
  expect(mismatch).toBeInstanceOf(SchemaMismatch);
  expect(mismatch.expected).toMatch(/^[0-9a-f]{16}$/);
  expect(await caught(caller.call("keyed", { a: "x", b: 2 }, { ...SCHEMAS, key: "k3y" }))).toBeInstanceOf(
    InvalidArgument,
  );
  expect(await caught(provider.exposeFunction("keyed", ADD_REQUEST, ADD_RESPONSE, add))).toBeInstanceOf(NameTaken);
  // A provider that never serves: its connection is busy in a synchronous sleep elsewhere.
  const sleeper = testee(broker.ns, ["provider", "--function", "sleepy", "--sleep-ms", "3000"]);
  await waitLine(sleeper.stdout, "ready");
  expect(await caught(caller.call("sleepy", { a: 1, b: 2 }, { ...SCHEMAS, timeoutMs: 200 }))).toBeInstanceOf(Timeout);
  sleeper.kill("SIGKILL");
  await sleeper.exited;
});

test("a withdrawn function fails later calls; a closed connection rejects pending calls with Closed", async () => {
  const fn = await provider.exposeFunction<AddRequest, AddResponse>("add", ADD_REQUEST, ADD_RESPONSE, add);
  expect(fn.functionId).toBeGreaterThan(0);
  expect((await caller.call<AddRequest, AddResponse>("add", { a: 1, b: 1 }, SCHEMAS)).sum).toBe(2);
  await fn.withdraw();
  await fn.withdraw();
  const after: any = await caller.call("add", { a: 1, b: 1 }, SCHEMAS).catch((e: any) => e);
  expect(after).toBeInstanceOf(Error);
  expect([PeerGone, UnknownFunction].some((c) => after instanceof c)).toBe(true);
  const sleeper = testee(broker.ns, ["provider", "--function", "sleepy", "--sleep-ms", "3000"]);
  await waitLine(sleeper.stdout, "ready");
  const pending = caller.call("sleepy", { a: 1, b: 2 }, SCHEMAS);
  caller.close();
  expect(await caught(pending)).toBeInstanceOf(Closed);
  sleeper.kill("SIGKILL");
  await sleeper.exited;
});

test("a provider killed under a pending call fails it with PeerGone within a second", async () => {
  const slow = testee(broker.ns, ["provider", "--function", "slow", "--sleep-ms", "30000"]);
  await waitLine(slow.stdout, "ready");
  const pending = caller.call("slow", { a: 1, b: 2 }, { ...SCHEMAS, timeoutMs: 30_000 }).catch((e: any) => e);
  // Let the request reach the provider's handler before the provider dies.
  await Bun.sleep(300);
  slow.kill("SIGKILL");
  const killed = performance.now();
  const err: any = await pending;
  expect(err).toBeInstanceOf(PeerGone);
  expect(err.code).toBe(9);
  expect(performance.now() - killed).toBeLessThan(1000);
  await slow.exited;
});

test("list shows the apps, channels and functions on the bus", async () => {
  const pub = await caller.publishChannel("listed", ADD_RESPONSE, { capacity: 8192, lossy: true });
  await provider.exposeFunction<AddRequest, AddResponse>("add", ADD_REQUEST, ADD_RESPONSE, add);
  const listing = await caller.list();
  const channel = listing.channels.find((c) => c.name === "listed")!;
  expect(channel).toMatchObject({ owner: caller.appId, capacity: 8192, lossy: true, subscribers: 0 });
  expect(channel.fingerprint).toBe(pub.fingerprint);
  const fn = listing.functions.find((f) => f.name === "add")!;
  // A worker-served function belongs to the worker's connection: an app of the same name.
  const owner = listing.apps.find((a) => a.id === fn.owner)!;
  expect(owner.name).toBe("ts-provider");
  expect(owner.pid).toBe(process.pid);
  expect(fn.requestFingerprint).toMatch(/^[0-9a-f]{16}$/);
  expect(listing.apps.map((a) => a.name)).toContain("ts-caller");
  caller.close();
  expect(String(await caught(caller.list()))).toContain("closed");
});
