/**
 * Channels against a live broker: typed and raw round trips, promises and async iteration, the
 * synchronous receive, every error a subscriber or publisher can meet, a killed publisher (Closed),
 * a killed broker (BrokerGone), and an idle subscriber's CPU. Each test has its own namespace.
 */

import { afterEach, beforeEach, expect, test } from "bun:test";

import {
  BrokerGone,
  Closed,
  Connection,
  InvalidArgument,
  InvalidSchema,
  Lagged,
  NameTaken,
  NoBroker,
  SchemaMismatch,
  TooLarge,
  UnknownChannel,
  WouldBlock,
  WrongKey,
} from "../src/index.ts";
import { Broker, segments, testee, uniqueNamespace, waitLine } from "./broker.ts";

interface Reading {
  seq: number;
  celsius: number;
  sensor: string;
}
const READING = {
  type: "record",
  name: "Reading",
  namespace: "test",
  fields: [
    { name: "seq", type: "long" },
    { name: "celsius", type: "double" },
    { name: "sensor", type: "string" },
  ],
};
const OTHER = { type: "record", name: "Reading", namespace: "test", fields: [{ name: "seq", type: "int" }] };

/** The error a promise rejects with (undefined if it resolves). Bun's `expect(p).rejects` starves
 * the event loop while it waits, so promises that timers settle are awaited here instead. */
async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

let broker: Broker;
let conn: Connection;

beforeEach(async () => {
  broker = await Broker.start("ch");
  conn = await Connection.connect("ts-test", { namespace: broker.ns });
});

afterEach(async () => {
  // Undefined, or a previous test's closed connection, after a connect that failed in beforeEach.
  conn?.close();
  expect(await broker.stop()).toBe(0);
  expect(segments(broker.ns)).toEqual([]);
});

const reading = (seq: number): Reading => ({ seq, celsius: 20 + seq / 10, sensor: `s${seq % 3}` });

test("a subscriber receives every record in order, through recv, recvSync and recvRaw", async () => {
  const pub = await conn.publishChannel<Reading>("readings", READING);
  const sub = await conn.subscribe<Reading>("readings", READING);
  expect(sub.fingerprint).toBe(pub.fingerprint);
  expect(pub.subscribers).toBe(1);
  for (let i = 0; i < 100; i++) pub.publish(reading(i));
  for (let i = 0; i < 50; i++) expect({ ...(await sub.recv()) }).toEqual(reading(i));
  for (let i = 50; i < 99; i++) expect({ ...sub.recvSync({ timeoutMs: 1000 }) }).toEqual(reading(i));
  const raw = sub.recvRawSync({ timeoutMs: 1000 })!;
  expect(raw).toBeInstanceOf(Buffer);
  pub.publishRaw(raw);
  expect({ ...(await sub.recv({ timeoutMs: 1000 })) }).toEqual(reading(99));
});

test("recv resolves undefined on timeout and resolves later when a record comes", async () => {
  const pub = await conn.publishChannel<Reading>("late", READING);
  const sub = await conn.subscribe<Reading>("late", READING);
  expect(await sub.recv({ timeoutMs: 0 })).toBeUndefined();
  expect(await sub.recv({ timeoutMs: 30 })).toBeUndefined();
  expect(sub.recvSync({ timeoutMs: 0 })).toBeUndefined();
  const pending = sub.recv({ timeoutMs: 5000 });
  setTimeout(() => pub.publish(reading(7)), 50);
  expect((await pending)?.seq).toBe(7);
});

test("several pending receives settle in order", async () => {
  const pub = await conn.publishChannel<Reading>("queue", READING);
  const sub = await conn.subscribe<Reading>("queue", READING);
  const pending = [sub.recv(), sub.recv(), sub.recv()];
  setTimeout(() => [1, 2, 3].forEach((i) => pub.publish(reading(i))), 10);
  expect((await Promise.all(pending)).map((r) => r?.seq)).toEqual([1, 2, 3]);
});

test("for await reads until the publisher closes the channel", async () => {
  const pub = await conn.publishChannel<Reading>("stream", READING, { capacity: 8192 });
  const sub = await conn.subscribe<Reading>("stream", READING);
  const seen: number[] = [];
  const reader = (async () => {
    for await (const r of sub) seen.push(r.seq);
  })();
  for (let i = 0; i < 500; i++) await pub.send(reading(i), { timeoutMs: 5000 });
  pub.close();
  await reader;
  expect(seen).toEqual([...Array(500).keys()]);
  expect(await caught(sub.recv())).toBeInstanceOf(Closed);
});

test("a full block ring gives WouldBlock to publish and makes send wait", async () => {
  const pub = await conn.publishChannel<Reading>("full", READING, { capacity: 4096 });
  const sub = await conn.subscribe<Reading>("full", READING);
  let published = 0;
  expect(() => {
    for (;;) {
      pub.publish(reading(published));
      published++;
    }
  }).toThrow(WouldBlock);
  expect(published).toBeGreaterThan(10);
  expect(pub.tryPublish(reading(published))).toBe(false);
  expect(pub.tryPublishRaw(new Uint8Array(8))).toBe(false);
  const waiting = pub.send(reading(published), { timeoutMs: 5000 });
  expect(sub.recvSync({ timeoutMs: 0 })?.seq).toBe(0);
  await waiting;
  for (let i = 1; i <= published; i++) expect(sub.recvSync({ timeoutMs: 1000 })?.seq).toBe(i);
  await expect(
    pub.send(reading(0), { timeoutMs: 0 }).then(() => pub.send(reading(0), { timeoutMs: 0 })),
  ).resolves.toBeUndefined();
});

test("a lagging lossy subscriber is told what it missed: received + missed = published", async () => {
  const pub = await conn.publishChannel<Reading>("lossy", READING, { capacity: 4096, lossy: true });
  const sub = await conn.subscribe<Reading>("lossy", READING);
  const total = 2000;
  for (let i = 0; i < total; i++) pub.publish(reading(i));
  let received = 0;
  let missed = 0;
  let next = 0;
  for (;;) {
    try {
      const r = sub.recvSync({ timeoutMs: 0 });
      if (r === undefined) break;
      expect(r.seq).toBe(next);
      next++;
      received++;
    } catch (err) {
      expect(err).toBeInstanceOf(Lagged);
      missed += (err as Lagged).missed;
      next += (err as Lagged).missed;
    }
  }
  expect(missed).toBeGreaterThan(0);
  expect(received + missed).toBe(total);
  expect(sub.missed).toBe(missed);
});

test("subscribing fails with UnknownChannel, WrongKey, SchemaMismatch and InvalidSchema", async () => {
  expect(await caught(conn.subscribe("nobody", READING))).toBeInstanceOf(UnknownChannel);
  const pub = await conn.publishChannel<Reading>("secret", READING, { key: "k3y" });
  expect(await caught(conn.subscribe("secret", READING))).toBeInstanceOf(WrongKey);
  expect(await caught(conn.subscribe("secret", READING, { key: "nope" }))).toBeInstanceOf(WrongKey);
  const mismatch: any = await conn.subscribe("secret", OTHER, { key: "k3y" }).catch((e: any) => e);
  expect(mismatch).toBeInstanceOf(SchemaMismatch);
  expect(mismatch.code).toBe(6);
  expect(mismatch.expected).toBe(pub.fingerprint);
  expect(mismatch.presented).toMatch(/^[0-9a-f]{16}$/);
  expect(mismatch.presented).not.toBe(pub.fingerprint);
  expect(mismatch.message).toContain(pub.fingerprint);
  expect(await caught(conn.subscribe("secret", '{"type":"record",'))).toBeInstanceOf(InvalidSchema);
  expect(await caught(conn.subscribe("secret", { type: "nonsense" }))).toBeInstanceOf(InvalidSchema);
  const sub = await conn.subscribe<Reading>("secret", READING, { key: "k3y" });
  pub.publish(reading(1));
  expect(sub.recvSync({ timeoutMs: 1000 })?.seq).toBe(1);
});

test("publishing fails with NameTaken, InvalidSchema, InvalidArgument and TooLarge; a bad record writes nothing", async () => {
  const pub = await conn.publishChannel<Reading>("taken", READING, { capacity: 4096 });
  expect(await caught(conn.publishChannel("taken", READING))).toBeInstanceOf(NameTaken);
  expect(await caught(conn.publishChannel("bad", "not json"))).toBeInstanceOf(InvalidSchema);
  expect(await caught(conn.publishChannel("odd", READING, { capacity: 5000 }))).toBeInstanceOf(InvalidArgument);
  const sub = await conn.subscribe<Reading>("taken", READING);
  const bad = (() => {
    try {
      pub.publish({ seq: 1, celsius: "warm", sensor: "s" } as unknown as Reading);
    } catch (err) {
      return err as Error;
    }
  })();
  expect(bad).toBeInstanceOf(InvalidArgument);
  expect(bad!.message).toContain("`celsius`");
  expect(() => pub.publish({ seq: 1 } as Reading)).toThrow(/`celsius`/);
  expect(() => pub.publishRaw(new Uint8Array(pub.maxDatum + 1))).toThrow(TooLarge);
  expect(sub.recvSync({ timeoutMs: 0 })).toBeUndefined();
});

test("closed handles fail with Closed, and closing twice is harmless", async () => {
  const pub = await conn.publishChannel<Reading>("gone", READING);
  const sub = await conn.subscribe<Reading>("gone", READING);
  const pending = sub.recv();
  sub.close();
  expect(await caught(pending)).toBeInstanceOf(Closed);
  expect(await caught(sub.recv())).toBeInstanceOf(Closed);
  sub.close();
  pub.close();
  expect(() => pub.publish(reading(0))).toThrow(Closed);
  pub.close();
  {
    using scoped = await conn.publishChannel<Reading>("scoped", READING);
    expect(scoped.subscribers).toBe(0);
  }
  // The scoped publisher is gone, so its name is free again.
  (await conn.publishChannel<Reading>("scoped", READING)).close();
});

test("closing the connection rejects pending receives with Closed", async () => {
  const other = await Connection.connect("ts-other", { namespace: broker.ns });
  await other.publishChannel<Reading>("left", READING);
  const sub = await other.subscribe<Reading>("left", READING);
  const pending = sub.recv();
  other.close();
  expect(await caught(pending)).toBeInstanceOf(Closed);
  expect(await caught(other.subscribe("left", READING))).toBeInstanceOf(Closed);
});

test("connecting where no broker runs fails with NoBroker naming the namespace", async () => {
  const ns = uniqueNamespace("none");
  const err: any = await Connection.connect("lost", { namespace: ns }).catch((e: any) => e);
  expect(err).toBeInstanceOf(NoBroker);
  expect(err.code).toBe(1);
  expect(err.namespace).toBe(ns);
  expect(err.message).toContain(ns);
});

test("a killed publisher's subscriber drains the channel and sees Closed", async () => {
  // The testee's checksums use all 64 bits of a long.
  const wide = await Connection.connect("ts-wide", { namespace: broker.ns, longs: "bigint" });
  const sub = (async () => {
    for (;;) {
      try {
        return await wide.subscribe<{ seq: bigint }>("doomed", {
          type: "record",
          name: "Message",
          namespace: "e2e",
          fields: [
            { name: "seq", type: "long" },
            { name: "body", type: "bytes" },
            { name: "checksum", type: "long" },
          ],
        });
      } catch (err) {
        if (!(err instanceof UnknownChannel)) throw err;
        await Bun.sleep(5);
      }
    }
  })();
  const publisher = testee(broker.ns, [
    "publisher",
    "--channel",
    "doomed",
    "--count",
    "10",
    "--wait-subscribers",
    "1",
    "--hold-ms",
    "60000",
  ]);
  const subscriber = await sub;
  await waitLine(publisher.stdout, "published 10");
  publisher.kill("SIGKILL");
  await publisher.exited;
  const seqs: number[] = [];
  for await (const m of subscriber) seqs.push(Number(m.seq));
  expect(seqs).toEqual([...Array(10).keys()]);
  wide.close();
});

test("an idle subscriber waiting in recv uses almost no CPU", async () => {
  await conn.publishChannel<Reading>("quiet", READING);
  const sub = await conn.subscribe<Reading>("quiet", READING);
  const pending = sub.recv({ timeoutMs: 1500 });
  await Bun.sleep(100); // past the spin window
  const before = process.cpuUsage();
  const started = performance.now();
  expect(await pending).toBeUndefined();
  const used = process.cpuUsage(before);
  const share = (used.user + used.system) / 1000 / (performance.now() - started);
  // An adaptive poll at 10 ms costs well under 1 %; 10 % leaves room for a busy test machine.
  expect(share).toBeLessThan(0.1);
});

test("a killed broker gives BrokerGone to a waiting subscriber", async () => {
  await conn.publishChannel<Reading>("orphan", READING);
  const sub = await conn.subscribe<Reading>("orphan", READING);
  const pending = sub.recv({ timeoutMs: 10_000 });
  await broker.kill();
  expect(await caught(pending)).toBeInstanceOf(BrokerGone);
  expect(conn.brokerGone).toBe(true);
  expect(await caught(conn.publishChannel("after", READING))).toBeInstanceOf(BrokerGone);
  conn.close();
  // A broker restarted in the namespace cleans up what the dead one left.
  broker = await Broker.startIn(broker.ns);
});
