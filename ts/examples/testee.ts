#!/usr/bin/env bun
/**
 * The TypeScript connector's testee: one role per run (publisher, subscriber, provider, caller),
 * parameters on the command line, results on stdout: the same roles, flags, message schemas and
 * output lines as rust/connector/examples/testee.rs and c/examples/testee.c, so ringctl pairs it with
 * any other language. A connector error prints `error <CodeName>: <message>` and exits with 10 + the
 * error's code; a verification failure prints `mismatch ...` and exits with 2; a usage error exits
 * with 64.
 *
 *   bun ts/examples/testee.ts publisher  [--channel C] [--key K] [--count N] [--lossy] [--capacity B]
 *       [--wait-subscribers K] [--wait-go] [--raw] [--hold-ms T] [--probe-too-large] [--probe-invalid-schema]
 *   bun ts/examples/testee.ts subscriber [--channel C] [--key K] [--count N] [--expect-closed] [--stall-ms T]
 *       [--schema other] [--probe-invalid-schema]
 *   bun ts/examples/testee.ts provider   [--function F] [--key K] [--fail-on X] [--sleep-ms T]
 *   bun ts/examples/testee.ts caller     [--function F] [--key K] [--count N] [--in-flight C] [--threads T]
 *       [--timeout-ms T] [--base A] [--keep-going]
 *
 * JavaScript has no threads to block in: `--threads T` runs T concurrent loops of awaited calls, which
 * is what T blocking threads amount to on one event loop; `--in-flight C` does the same with C.
 */

import { writeSync } from "node:fs";

import { body, checksum, message, type Message } from "./messages.ts";
import { BrokerGone, Closed, Connection, Lagged, RingError, UnknownChannel, type Publisher } from "../src/index.ts";

const MESSAGE = `{"type":"record","name":"Message","namespace":"e2e","fields":[
  {"name":"seq","type":"long"},{"name":"body","type":"bytes"},{"name":"checksum","type":"long"}]}`;
/** Same field names, another type for `body`: another fingerprint. */
const OTHER_MESSAGE = `{"type":"record","name":"Message","namespace":"e2e","fields":[
  {"name":"seq","type":"long"},{"name":"body","type":"string"},{"name":"checksum","type":"long"}]}`;
const MALFORMED = `{"type":"record","name":"Broken","fields":[{"name":"x","type":`;
const ADD_REQUEST = `{"type":"record","name":"AddRequest","namespace":"e2e","fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}`;
const ADD_RESPONSE = `{"type":"record","name":"AddResponse","namespace":"e2e","fields":[{"name":"sum","type":"long"}]}`;

interface AddRequest {
  a: bigint;
  b: bigint;
}
interface AddResponse {
  sum: bigint;
}

// ---- Outcomes ----

/** Prints one output line at once: the harness reads lines as they come, and exit must not lose one. */
function say(line: string): void {
  writeSync(1, line + "\n");
}

function usage(message: string): never {
  writeSync(2, `testee: ${message}\nusage: testee publisher|subscriber|provider|caller [--option value]...\n`);
  process.exit(64);
}

/** Reports a connector error and exits with 10 + its code. */
function failRing(err: unknown): never {
  if (!(err instanceof RingError)) throw err;
  say(`error ${err.name}: ${err.message}`);
  process.exit(10 + err.code);
}

function failMismatch(message: string): never {
  say(`mismatch ${message}`);
  process.exit(2);
}

// ---- Arguments: `--name value` pairs and bare flags ----

const FLAGS = new Set([
  "--lossy",
  "--wait-go",
  "--raw",
  "--expect-closed",
  "--probe-too-large",
  "--probe-invalid-schema",
  "--keep-going",
  "--help",
]);

/** The options each role knows (spec/testee.md §5); any other is a usage error. */
const OPTIONS: Record<string, string[]> = {
  publisher: [
    "--channel",
    "--key",
    "--count",
    "--lossy",
    "--capacity",
    "--wait-subscribers",
    "--wait-go",
    "--raw",
    "--hold-ms",
    "--probe-too-large",
    "--probe-invalid-schema",
  ],
  subscriber: ["--channel", "--key", "--count", "--expect-closed", "--stall-ms", "--schema", "--probe-invalid-schema"],
  provider: ["--function", "--key", "--fail-on", "--sleep-ms"],
  caller: ["--function", "--key", "--count", "--base", "--in-flight", "--threads", "--timeout-ms", "--keep-going"],
};

class Args {
  private readonly flags = new Set<string>();
  private readonly values = new Map<string, string>();

  constructor(role: string, argv: string[]) {
    const known = OPTIONS[role];
    if (known === undefined) usage(`unknown role \`${role}\``);
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      if (!arg.startsWith("--")) usage(`unexpected argument \`${arg}\``);
      if (!known.includes(arg)) usage(`unknown option \`${arg}\` for the ${role} role`);
      if (FLAGS.has(arg)) {
        this.flags.add(arg);
        continue;
      }
      const value = argv[i + 1];
      if (value === undefined) usage(`\`${arg}\` needs a value`);
      this.values.set(arg, value);
      i++;
    }
  }

  flag(name: string): boolean {
    return this.flags.has(name);
  }

  text(name: string): string | undefined {
    return this.values.get(name);
  }

  number(name: string, fallback: number): number {
    const value = this.values.get(name);
    if (value === undefined) return fallback;
    if (!/^-?\d+$/.test(value)) usage(`\`${name}\` takes a number, not \`${value}\``);
    return Number(value);
  }
}

// ---- stdin: a go line for publishers, its end for providers ----

const stdin = Bun.stdin.stream().getReader();
let stdinText = "";

/** Waits for one line on stdin (false when stdin ended first). */
async function readLine(): Promise<boolean> {
  for (;;) {
    if (stdinText.includes("\n")) {
      stdinText = stdinText.slice(stdinText.indexOf("\n") + 1);
      return true;
    }
    const { done, value } = await stdin.read();
    if (done) return false;
    stdinText += new TextDecoder().decode(value);
  }
}

async function stdinClosed(): Promise<void> {
  while (!(await stdin.read()).done) {}
}

function probe(err: unknown, accepted: string): void {
  if (err === undefined) say(`probe ${accepted}`);
  else if (err instanceof RingError) say(`probe ${err.name}: ${err.message}`);
  else throw err;
}

async function connect(name: string): Promise<Connection> {
  try {
    return await Connection.connect(name, { longs: "bigint" });
  } catch (err) {
    failRing(err);
  }
}

// ---- Roles ----

async function publisher(args: Args): Promise<void> {
  const channel = args.text("--channel") ?? "data";
  const count = args.number("--count", 1000);
  const conn = await connect("testee-publisher");
  if (args.flag("--probe-invalid-schema")) {
    try {
      (await conn.publishChannel(`${channel}-malformed`, MALFORMED)).close();
      probe(undefined, "accepted a malformed schema");
    } catch (err) {
      probe(err, "");
    }
  }
  let pub: Publisher<Message>;
  try {
    pub = await conn.publishChannel<Message>(channel, MESSAGE, {
      key: args.text("--key"),
      capacity: args.number("--capacity", 0),
      lossy: args.flag("--lossy"),
    });
  } catch (err) {
    failRing(err);
  }
  say("ready");
  const wanted = args.number("--wait-subscribers", 0);
  const deadline = Date.now() + 30_000;
  while (pub.subscribers < wanted) {
    if (Date.now() > deadline) failMismatch(`only ${pub.subscribers} of ${wanted} subscribers came`);
    await Bun.sleep(5);
  }
  if (args.flag("--wait-go") && !(await readLine())) usage("cannot read the go line from stdin");
  if (args.flag("--probe-too-large")) {
    try {
      pub.publishRaw(new Uint8Array(pub.maxDatum + 1));
      probe(undefined, "published an oversized payload");
    } catch (err) {
      probe(err, "");
    }
  }
  const raw = args.flag("--raw");
  try {
    for (let seq = 0n; seq < BigInt(count); seq++) {
      // Like the Rust publisher's default: wait up to 10 s for a slow subscriber.
      if (raw) await pub.sendRaw(encodeMessage(message(seq)), { timeoutMs: 10_000 });
      else await pub.send(message(seq), { timeoutMs: 10_000 });
    }
  } catch (err) {
    failRing(err);
  }
  say(`published ${count}`);
  // Holding keeps the channel open even when the broker goes: the error is printed at once, but the
  // publisher lives on until the hold ends or a kill.
  const until = Date.now() + args.number("--hold-ms", 0);
  let brokerGone = false;
  while (Date.now() < until) {
    if (!brokerGone && conn.brokerGone) {
      brokerGone = true;
      say(`error BrokerGone: the broker of namespace \`${conn.namespace}\` is gone`);
    }
    await Bun.sleep(10);
  }
  if (brokerGone) process.exit(12);
  pub.close();
  conn.close();
}

/** The Message datum written by hand (zig-zag varints), for --raw: no avsc on the way out. */
function encodeMessage(m: Message): Buffer {
  const parts: number[] = [];
  const long = (n: bigint) => {
    let z = BigInt.asUintN(64, (n << 1n) ^ (n >> 63n));
    while (z >= 0x80n) {
      parts.push(Number(z & 0x7fn) | 0x80);
      z >>= 7n;
    }
    parts.push(Number(z));
  };
  long(m.seq);
  long(BigInt(m.body.length));
  const head = Buffer.from(parts);
  parts.length = 0;
  long(m.checksum);
  return Buffer.concat([head, m.body, Buffer.from(parts)]);
}

function intact(m: Message): boolean {
  const want = body(m.seq);
  return Buffer.compare(m.body, want) === 0 && m.checksum === checksum(m.seq, m.body);
}

async function subscriber(args: Args): Promise<void> {
  const channel = args.text("--channel") ?? "data";
  const count = args.number("--count", 1000);
  const expectClosed = args.flag("--expect-closed");
  const stall = args.number("--stall-ms", 0);
  const which = args.text("--schema");
  if (which !== undefined && which !== "other") usage(`unknown schema \`${which}\`; use \`other\``);
  const schema = which === undefined ? MESSAGE : OTHER_MESSAGE;
  const key = args.text("--key");
  const conn = await connect("testee-subscriber");
  if (args.flag("--probe-invalid-schema")) {
    try {
      (await conn.subscribe(channel, MALFORMED, { key })).close();
      probe(undefined, "subscribed with a malformed schema");
    } catch (err) {
      probe(err, "");
    }
  }
  // The channel may not be published yet: retry for a while.
  const deadline = Date.now() + 30_000;
  let sub;
  for (;;) {
    try {
      sub = await conn.subscribe<Message>(channel, schema, { key });
      break;
    } catch (err) {
      if (!(err instanceof UnknownChannel) || Date.now() >= deadline) failRing(err);
      await Bun.sleep(5);
    }
  }
  say("subscribed");
  if (stall > 0) await Bun.sleep(stall);
  let next = 0n;
  let received = 0;
  let missed = 0;
  let idleSince = Date.now();
  // How the loop ended, reported after the counts like the Rust testee does.
  let mismatch = "";
  let error: unknown;
  for (;;) {
    if (!expectClosed && received + missed >= count) break;
    try {
      const m = await sub.recv({ timeoutMs: 100 });
      if (m === undefined) {
        if (Date.now() - idleSince > 60_000) {
          mismatch = `nothing received for 60 s after ${received} messages`;
          break;
        }
        continue;
      }
      idleSince = Date.now();
      if (m.seq !== next) {
        mismatch = `expected message ${next}, got ${m.seq}`;
        break;
      }
      if (!intact(m)) {
        mismatch = `message ${next} is damaged`;
        break;
      }
      next++;
      received++;
    } catch (err) {
      if (err instanceof Lagged) {
        missed += err.missed;
        next += BigInt(err.missed);
      } else if (err instanceof Closed && expectClosed) {
        say("closed");
        break;
      } else {
        error = err;
        break;
      }
    }
  }
  say(`received ${received}`);
  if (args.text("--stall-ms") !== undefined || missed > 0) say(`missed ${missed} received ${received}`);
  if (mismatch !== "") failMismatch(mismatch);
  if (error !== undefined) failRing(error);
  sub.close();
  conn.close();
}

async function provider(args: Args): Promise<void> {
  const failOn = args.text("--fail-on") === undefined ? undefined : BigInt(args.number("--fail-on", 0));
  const sleepMs = args.number("--sleep-ms", 0);
  const conn = await connect("testee-provider");
  const name = args.text("--function") ?? "add";
  let fn;
  try {
    fn = await conn.exposeFunction<AddRequest, AddResponse>(
      name,
      ADD_REQUEST,
      ADD_RESPONSE,
      (req) => {
        // A handler that takes its time (the killed-provider case): nothing else runs meanwhile.
        if (sleepMs > 0) Bun.sleepSync(sleepMs);
        if (failOn !== undefined && req.a === failOn) throw new Error(`refusing a = ${req.a}`);
        return { sum: BigInt.asIntN(64, req.a + req.b) };
      },
      { key: args.text("--key") },
    );
  } catch (err) {
    failRing(err);
  }
  say("ready");
  // Serve until stdin closes (the harness's way to stop us), or the broker goes.
  let stop = false;
  void stdinClosed().then(() => (stop = true));
  while (!stop) {
    if (conn.brokerGone) failRing(new BrokerGone(`the broker of namespace \`${conn.namespace}\` is gone`));
    await Bun.sleep(50);
  }
  await fn.withdraw();
  conn.close();
}

async function caller(args: Args): Promise<void> {
  const count = args.number("--count", 1000);
  const fn = args.text("--function") ?? "add";
  const key = args.text("--key");
  const base = BigInt(args.number("--base", 0));
  const timeoutMs = args.number("--timeout-ms", 30_000);
  const keepGoing = args.flag("--keep-going");
  const threads = args.number("--threads", 0);
  const lanes = Math.max(1, threads > 0 ? threads : args.number("--in-flight", 1));
  const conn = await connect("testee-caller");
  const options = { requestSchema: ADD_REQUEST, responseSchema: ADD_RESPONSE, key, timeoutMs };
  let failed = 0;
  let announced = false;
  const lane = async (first: number) => {
    for (let i = first; i < count; i += lanes) {
      const n = BigInt(i);
      const pending = conn.call<AddRequest, AddResponse>(fn, { a: base + n, b: n * 3n }, options);
      if (!announced) {
        announced = true;
        say("calling");
      }
      try {
        const res = await pending;
        if (res.sum !== base + n + n * 3n) failMismatch(`call ${i} returned ${res.sum}`);
      } catch (err) {
        if (!(err instanceof RingError)) throw err;
        say(`error ${err.name}: ${err.message}`);
        if (!keepGoing) process.exit(10 + err.code);
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: lanes }, (_, t) => lane(t)));
  say(keepGoing ? `ok ${count - failed} failed ${failed}` : `ok ${count}`);
  conn.close();
}

const [role, ...rest] = process.argv.slice(2);
if (role === "--help" || rest.includes("--help")) {
  // The contract is spec/testee.md; this file's header summarises it.
  const source = await Bun.file(import.meta.path).text();
  say(
    /\/\*\*([\s\S]*?)\*\//
      .exec(source)![1]!
      .replace(/^ \* ?/gm, "")
      .trim(),
  );
  say("The full contract: spec/testee.md");
  process.exit(0);
}
if (role === undefined) usage("no role given");
const args = new Args(role, rest);
switch (role) {
  case "publisher":
    await publisher(args);
    break;
  case "subscriber":
    await subscriber(args);
    break;
  case "provider":
    await provider(args);
    break;
  case "caller":
    await caller(args);
    break;
  default:
    usage(`unknown role \`${role}\``);
}
process.exit(0);
