/**
 * A quick measurement of the connector's own costs, in one process against a live broker (not yet the
 * `ringctl bench` rows, which pair processes): raw and typed publish + receive of 64-byte messages,
 * and the latency of `await recv()` for a message published from a timer. Prints figures; asserts
 * nothing. Run: `bun ts/bench/throughput.ts` with a broker in IMPULSE_RING_NS.
 */

import { Connection } from "../src/index.ts";

const conn = await Connection.connect("ts-bench");
const BYTES = { type: "record", name: "Blob", fields: [{ name: "data", type: "bytes" }] };

async function raw(n: number): Promise<number> {
  const pub = await conn.publishChannel("bench-raw", '"bytes"', { capacity: 1 << 22 });
  const sub = await conn.subscribe("bench-raw", '"bytes"');
  const datum = new Uint8Array(64);
  const started = performance.now();
  for (let i = 0; i < n; i += 1000) {
    for (let k = 0; k < 1000; k++) pub.publishRaw(datum);
    for (let k = 0; k < 1000; k++) sub.recvRawSync({ timeoutMs: 0 });
  }
  const rate = n / ((performance.now() - started) / 1000);
  pub.close();
  sub.close();
  return rate;
}

async function typed(n: number): Promise<number> {
  const pub = await conn.publishChannel<{ data: Buffer }>("bench-typed", BYTES, { capacity: 1 << 22 });
  const sub = await conn.subscribe<{ data: Buffer }>("bench-typed", BYTES);
  const record = { data: Buffer.alloc(62) };
  const started = performance.now();
  for (let i = 0; i < n; i += 1000) {
    for (let k = 0; k < 1000; k++) pub.publish(record);
    for (let k = 0; k < 1000; k++) sub.recvSync({ timeoutMs: 0 });
  }
  const rate = n / ((performance.now() - started) / 1000);
  pub.close();
  sub.close();
  return rate;
}

async function awaitLatency(n: number): Promise<number[]> {
  const pub = await conn.publishChannel("bench-await", '"bytes"');
  const sub = await conn.subscribe("bench-await", '"bytes"');
  const samples: number[] = [];
  const datum = new Uint8Array(64);
  for (let i = 0; i < n; i++) {
    let sent = 0;
    const got = sub.recvRaw();
    setImmediate(() => {
      sent = performance.now();
      pub.publishRaw(datum);
    });
    await got;
    samples.push((performance.now() - sent) * 1000);
  }
  pub.close();
  sub.close();
  return samples.sort((a, b) => a - b);
}

const r = await raw(1_000_000);
const t = await typed(300_000);
const l = await awaitLatency(20_000);
const pct = (p: number) => l[Math.floor((l.length - 1) * p)]!.toFixed(1);
console.log(`raw 64 B publish + receive, one thread: ${(r / 1e6).toFixed(2)} M msgs/s`);
console.log(`typed (avsc) 64 B publish + receive, one thread: ${(t / 1e3).toFixed(0)} k records/s`);
console.log(`await recv() wake-up after a publish, same process: p50 ${pct(0.5)} µs, p99 ${pct(0.99)} µs`);
conn.close();
