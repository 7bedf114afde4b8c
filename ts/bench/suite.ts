/**
 * The TypeScript connector's benchmark cases for `ringctl bench`: a leader and a follower process
 * (this file run twice) against the broker of IMPULSE_RING_NS, printing one JSON row per figure in
 * the format of tools/bench/src/report.rs (system `ring-ts`, `ring-ts-typed`, and the Bun Unix
 * socket baseline `bun-uds`). One way = round trip / 2. Asserts nothing.
 *
 *   bun ts/bench/suite.ts suite [--quick]
 *   bun ts/bench/suite.ts follower <case>      (started by the suite)
 */

import { existsSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Connection, type Publisher, type Subscriber } from "../src/index.ts";

const SIZE = 64;
/** A 64-byte datum: Avro `fixed` is its bytes, nothing more. */
const RAW = '{"type":"fixed","name":"P64","size":64}';
interface Blob {
  data: Buffer;
}
/** A record whose datum is 64 bytes: a 1-byte length, then 63 bytes. */
const TYPED = '{"type":"record","name":"Blob","fields":[{"name":"data","type":"bytes"}]}';
const TYPED_BODY = Buffer.alloc(SIZE - 1, 7);

interface Row {
  case: string;
  system: string;
  wait: string;
  subscribers: number | null;
  samples?: number[];
  msgsPerS?: number;
}

function print(row: Row): void {
  const q = (p: number) => {
    const s = row.samples!;
    return Math.round(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!);
  };
  if (row.samples) row.samples.sort((a, b) => a - b);
  const fields = [
    `"case":"${row.case}"`,
    `"system":"${row.system}"`,
    `"payload_bytes":${SIZE}`,
    `"wait":"${row.wait}"`,
    `"subscribers":${row.subscribers ?? "null"}`,
    `"p50_ns":${row.samples ? q(0.5) : "null"}`,
    `"p99_ns":${row.samples ? q(0.99) : "null"}`,
    `"p999_ns":${row.samples ? q(0.999) : "null"}`,
    `"msgs_per_s":${row.msgsPerS?.toFixed(1) ?? "null"}`,
    `"bytes_per_s":${row.msgsPerS ? (row.msgsPerS * SIZE).toFixed(1) : "null"}`,
  ];
  console.log(`{${fields.join(",")}}`);
}

const now = () => Bun.nanoseconds();

async function subscribeWhenThere<T>(conn: Connection, name: string, schema: string): Promise<Subscriber<T>> {
  for (;;) {
    try {
      return await conn.subscribe<T>(name, schema);
    } catch {
      await Bun.sleep(2);
    }
  }
}

async function waitFor(pub: Publisher<unknown>): Promise<void> {
  while (pub.subscribers < 1) await Bun.sleep(2);
}

function spinRecv(sub: Subscriber<unknown>): Buffer {
  for (;;) {
    const got = sub.recvRawSync({ timeoutMs: 0 });
    if (got !== undefined) return got;
  }
}

function spinPublish(pub: Publisher<unknown>, datum: Uint8Array): void {
  while (!pub.tryPublishRaw(datum)) {}
}

// ---- Follower: echoes pings (latency), provides `echo` (calls), or drains (throughput) ----

async function follower(which: string): Promise<void> {
  const conn = await Connection.connect("ts-bench-follower");
  if (which === "call") {
    await conn.exposeFunction("ts-bench-echo", RAW, RAW, (x: unknown) => x);
    await conn.exposeFunction("ts-bench-echo-inline", RAW, RAW, (x: unknown) => x, { serve: "inline" });
    await new Promise(() => {}); // served by the pump until the leader kills us
  }
  if (which === "throughput" || which === "typed") {
    const sub = await subscribeWhenThere<Blob>(conn, `ts-bench-${which}`, which === "typed" ? TYPED : RAW);
    const done = await conn.publishChannel("ts-bench-done", RAW);
    const count = Number(spinRecv(sub).readBigUInt64LE(0));
    if (which === "typed") for (let i = 0; i < count; i++) while (sub.recvSync({ timeoutMs: 0 }) === undefined) {}
    else for (let i = 0; i < count; i++) spinRecv(sub);
    await waitFor(done);
    done.publishRaw(new Uint8Array(SIZE));
    await Bun.sleep(100);
    conn.close();
    return;
  }
  const ping = await subscribeWhenThere(conn, "ts-bench-ping", RAW);
  const pong = await conn.publishChannel("ts-bench-pong", RAW);
  await waitFor(pong);
  const asyncMode = which === "await";
  for (;;) {
    const datum = asyncMode ? (await ping.recvRaw())! : spinRecv(ping);
    if (datum[0] === 0xff) break;
    pong.publishRaw(datum);
  }
  conn.close();
}

function spawnFollower(which: string) {
  return Bun.spawn(["bun", import.meta.path, "follower", which], { stdout: "inherit", stderr: "inherit" });
}

// ---- Leader ----

async function latency(conn: Connection, wait: "spin" | "await", iters: number, warmup: number): Promise<void> {
  const child = spawnFollower(wait);
  const ping = await conn.publishChannel("ts-bench-ping", RAW);
  const pong = await subscribeWhenThere(conn, "ts-bench-pong", RAW);
  await waitFor(ping);
  const datum = new Uint8Array(SIZE);
  const samples: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    const started = now();
    ping.publishRaw(datum);
    if (wait === "await") await pong.recvRaw();
    else spinRecv(pong);
    if (i >= warmup) samples.push((now() - started) / 2);
  }
  datum[0] = 0xff;
  ping.publishRaw(datum);
  await child.exited;
  ping.close();
  pong.close();
  print({ case: "pubsub_latency", system: "ring-ts", wait, subscribers: null, samples });
}

async function callLatency(conn: Connection, iters: number, warmup: number): Promise<void> {
  const child = spawnFollower("call");
  const options = { requestSchema: RAW, responseSchema: RAW, timeoutMs: 5000 };
  const datum = new Uint8Array(SIZE);
  for (;;) {
    try {
      await conn.callRaw("ts-bench-echo", datum, options);
      break;
    } catch {
      await Bun.sleep(5);
    }
  }
  // "await": the default worker-served function; "inline": served on the provider's JS thread.
  for (const [fn, wait] of [
    ["ts-bench-echo", "await"],
    ["ts-bench-echo-inline", "inline"],
  ] as const) {
    const samples: number[] = [];
    for (let i = 0; i < warmup + iters; i++) {
      const started = now();
      await conn.callRaw(fn, datum, options);
      if (i >= warmup) samples.push(now() - started);
    }
    print({ case: "call_latency", system: "ring-ts", wait, subscribers: null, samples });
  }
  child.kill("SIGKILL");
  await child.exited;
}

async function throughput(conn: Connection, typed: boolean, count: number): Promise<void> {
  const which = typed ? "typed" : "throughput";
  const child = spawnFollower(which);
  const pub = await conn.publishChannel<Blob>(`ts-bench-${which}`, typed ? TYPED : RAW, { capacity: 1 << 20 });
  await waitFor(pub);
  const done = await subscribeWhenThere(conn, "ts-bench-done", RAW);
  const header = new Uint8Array(SIZE);
  new DataView(header.buffer).setBigUint64(0, BigInt(count), true);
  spinPublish(pub, header);
  const datum = new Uint8Array(SIZE);
  const record = { data: TYPED_BODY };
  const started = now();
  for (let i = 0; i < count; i++) {
    if (!typed) {
      spinPublish(pub, datum);
      continue;
    }
    while (!pub.tryPublish(record)) {}
  }
  spinRecv(done);
  const seconds = (now() - started) / 1e9;
  await child.exited;
  pub.close();
  done.close();
  print({
    case: "pubsub_throughput",
    system: typed ? "ring-ts-typed" : "ring-ts",
    wait: "spin",
    subscribers: 1,
    msgsPerS: count / seconds,
  });
}

/** The baseline a Bun user would pick: 64 B ping-pong over a Unix socket, awaiting each reply. */
async function unixSocket(iters: number, warmup: number): Promise<void> {
  const path = join(tmpdir(), `ts-bench-${process.pid}.sock`);
  const server = Bun.listen({ unix: path, socket: { data: (socket, data) => void socket.write(data) } });
  let waiting: (() => void) | undefined;
  let buffered = 0;
  const client = await Bun.connect({
    unix: path,
    socket: {
      data: (_socket, data) => {
        buffered += data.length;
        if (buffered >= SIZE) {
          buffered -= SIZE;
          waiting?.();
        }
      },
    },
  });
  const datum = new Uint8Array(SIZE);
  const samples: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    const started = now();
    const reply = new Promise<void>((resolve) => (waiting = resolve));
    client.write(datum);
    await reply;
    if (i >= warmup) samples.push((now() - started) / 2);
  }
  client.end();
  server.stop(true);
  // Bun removes the socket file itself on stop; a leftover one is ours to remove.
  if (existsSync(path)) unlinkSync(path);
  print({ case: "pubsub_latency", system: "bun-uds", wait: "await", subscribers: null, samples });
}

async function suite(quick: boolean): Promise<void> {
  const iters = quick ? 2_000 : 20_000;
  const warmup = quick ? 200 : 2_000;
  const count = quick ? 100_000 : 1_000_000;
  const conn = await Connection.connect("ts-bench");
  await latency(conn, "spin", iters, warmup);
  await latency(conn, "await", iters, warmup);
  await callLatency(conn, iters, warmup);
  await throughput(conn, false, count);
  await throughput(conn, true, count / 2);
  conn.close();
  await unixSocket(iters, warmup);
}

const [role, arg] = process.argv.slice(2);
if (role === "suite") await suite(arg === "--quick");
else if (role === "follower" && arg !== undefined) await follower(arg);
else {
  console.error("usage: bun ts/bench/suite.ts suite [--quick] | follower <case>");
  process.exit(64);
}
process.exit(0);
