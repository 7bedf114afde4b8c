/**
 * Test support: a live broker (`target/debug/impulsed`) in a namespace of the test's own, stopped at
 * the end with SIGTERM, after which the namespace must have left nothing in /dev/shm.
 */

import { existsSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import type { Subprocess } from "bun";

import { Connection, NoBroker } from "../src/index.ts";

export const ROOT = resolve(import.meta.dir, "../..");
const BROKER = process.env.IMPULSE_RING_BROKER ?? resolve(ROOT, "target/debug/impulsed");

let counter = 0;

/** A namespace no other test uses: the pid, a counter and the test's tag. */
export function uniqueNamespace(tag: string): string {
  counter++;
  return `ts-${process.pid}-${counter}-${tag}`.slice(0, 64);
}

/** Starts the TypeScript testee in `ns` (stdout piped, stdin a pipe the test may close). */
export function testee(ns: string, args: string[]) {
  return Bun.spawn(["bun", resolve(ROOT, "ts/examples/testee.ts"), ...args], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, IMPULSE_RING_NS: ns },
  });
}

/** Reads `stream` until a line starting with `prefix` arrives; returns the lines read so far. */
export async function waitLine(stream: ReadableStream<Uint8Array>, prefix: string): Promise<string[]> {
  const reader = stream.getReader();
  const seen: string[] = [];
  let buffered = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`the stream ended before \`${prefix}\`; got ${JSON.stringify(seen)}`);
      buffered += new TextDecoder().decode(value);
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      seen.push(...parts);
      if (parts.some((l) => l.startsWith(prefix))) return seen;
    }
  } finally {
    reader.releaseLock();
  }
}

/** The /dev/shm entries of namespace `ns`. */
export function segments(ns: string): string[] {
  return readdirSync("/dev/shm").filter((name) => name.startsWith(`impulse-ring.${ns}.`));
}

export class Broker {
  readonly ns: string;
  private proc: Subprocess | undefined;

  private constructor(ns: string, proc: Subprocess) {
    this.ns = ns;
    this.proc = proc;
  }

  /** Starts a broker in a fresh namespace and waits for its control segment. */
  static async start(tag: string): Promise<Broker> {
    return Broker.startIn(uniqueNamespace(tag));
  }

  /** Starts a broker in `ns` (a restarted broker cleans up after a crashed one). */
  static async startIn(ns: string): Promise<Broker> {
    if (!existsSync(BROKER)) {
      throw new Error(`no broker at ${BROKER}; build it with \`cargo build -p impulsed\``);
    }
    const proc = Bun.spawn([BROKER, "--ns", ns, "--log-level", "warn"], {
      stdout: "inherit",
      stderr: "inherit",
      env: { ...process.env, IMPULSE_RING_NS: ns },
    });
    const ctl = `/dev/shm/impulse-ring.${ns}.ctl`;
    const deadline = Date.now() + 10_000;
    while (!existsSync(ctl)) {
      if (proc.exitCode !== null) throw new Error(`the broker exited with ${proc.exitCode} before creating ${ctl}`);
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        await proc.exited;
        throw new Error(`the broker did not create ${ctl} within 10 s`);
      }
      await Bun.sleep(5);
    }
    // The control segment may still be a dead broker's (a restart): ready means an app can register.
    for (;;) {
      try {
        (await Connection.connect("ts-test-probe", { namespace: ns })).close();
        break;
      } catch (err) {
        if (!(err instanceof NoBroker) || Date.now() > deadline) {
          // No test will stop a broker it never got: stop it here, or it outlives the run.
          await new Broker(ns, proc).stop();
          throw err;
        }
        await Bun.sleep(5);
      }
    }
    return new Broker(ns, proc);
  }

  /** Kills the broker as a crash would (its segments stay until a broker cleans up). */
  async kill(): Promise<void> {
    this.proc?.kill("SIGKILL");
    await this.proc?.exited;
  }

  /** Stops the broker with SIGTERM and waits for it; returns its exit code. */
  async stop(): Promise<number | null> {
    const proc = this.proc;
    if (proc === undefined) return null;
    this.proc = undefined;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    await proc.exited;
    clearTimeout(timer);
    return proc.exitCode;
  }
}
