/**
 * The demo: two apps on one bus, like rust/connector/examples/demo.rs and c/examples/demo.c. `sensor`
 * publishes readings on a keyed channel and exposes an `add` function; `dashboard` subscribes to the
 * readings and calls `add`. Run a broker first (`cargo run -p impulsed`), then
 * `bun ts/examples/demo.ts` (IMPULSE_RING_NS selects the namespace).
 */

import { Closed, Connection, RingError, WrongKey } from "../src/index.ts";

interface Reading {
  seq: number;
  celsius: number;
  sensor: string;
}
interface AddRequest {
  a: number;
  b: number;
}
interface AddResponse {
  sum: number;
}

const READING = {
  type: "record",
  name: "Reading",
  namespace: "demo",
  fields: [
    { name: "seq", type: "long" },
    { name: "celsius", type: "double" },
    { name: "sensor", type: "string" },
  ],
};
const ADD_REQUEST = {
  type: "record",
  name: "AddRequest",
  namespace: "demo",
  fields: [
    { name: "a", type: "long" },
    { name: "b", type: "long" },
  ],
};
const ADD_RESPONSE = {
  type: "record",
  name: "AddResponse",
  namespace: "demo",
  fields: [{ name: "sum", type: "long" }],
};

using sensor = await Connection.connect("sensor");
console.log(`sensor connected as app ${sensor.appId} in namespace \`${sensor.namespace}\``);
using dashboard = await Connection.connect("dashboard");
console.log(`dashboard connected as app ${dashboard.appId}`);

const readings = await sensor.publishChannel<Reading>("readings", READING, { key: "demo-key" });
console.log(`sensor publishes \`readings\` (schema ${readings.fingerprint})`);
await sensor.exposeFunction<AddRequest, AddResponse>("add", ADD_REQUEST, ADD_RESPONSE, ({ a, b }) => {
  if (!Number.isSafeInteger(a + b)) throw new Error("overflow");
  return { sum: a + b };
});
console.log("sensor exposes `add`");

try {
  await dashboard.subscribe<Reading>("readings", READING, { key: "wrong" });
} catch (err) {
  if (!(err instanceof WrongKey)) throw err;
  console.log(`dashboard with a wrong key: ${err.name}: ${err.message}`);
}
const sub = await dashboard.subscribe<Reading>("readings", READING, { key: "demo-key" });

for (let seq = 0; seq < 5; seq++) readings.publish({ seq, celsius: 20 + seq / 2, sensor: "greenhouse" });
for (let i = 0; i < 5; i++) {
  const r = await sub.recv({ timeoutMs: 2000 });
  if (r === undefined) throw new Error("dashboard: no reading within 2 s");
  console.log(`dashboard received Reading { seq: ${r.seq}, celsius: ${r.celsius.toFixed(1)}, sensor: "${r.sensor}" }`);
}

const calls = { requestSchema: ADD_REQUEST, responseSchema: ADD_RESPONSE, timeoutMs: 5000 };
const [x, y] = await Promise.all([
  dashboard.call<AddRequest, AddResponse>("add", { a: 2, b: 40 }, calls),
  dashboard.call<AddRequest, AddResponse>("add", { a: 1000, b: 337 }, calls),
]);
console.log(`dashboard called add(2, 40) = ${x.sum} and add(1000, 337) = ${y.sum}`);
try {
  await dashboard.call("add", { a: 2 ** 52, b: 2 ** 52 }, calls);
} catch (err) {
  if (!(err instanceof RingError)) throw err;
  console.log(`dashboard called add(2^52, 2^52): ${err.name}: ${err.message}`);
}

readings.close();
try {
  await sub.recv({ timeoutMs: 2000 });
} catch (err) {
  if (!(err instanceof Closed)) throw err;
  console.log(`dashboard after the sensor closed the channel: ${err.name}: ${err.message}`);
}
console.log("demo done");
