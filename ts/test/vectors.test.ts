/**
 * The shared vectors that apply to a connector over the C library: the error vocabulary
 * (spec/vectors/errors.txt) against the error classes and the C library's names, the schema
 * fingerprints (spec/vectors/fingerprints.txt) as a live broker returns them, and the testee's
 * message check values (spec/testee.md §3).
 */

import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import { Connection, ERROR_CLASSES, errorFor, InvalidSchema, Protocol, RingError } from "../src/index.ts";
import * as errors from "../src/errors.ts";
import { lib, text } from "../src/ffi.ts";
import { body, checksum } from "../examples/messages.ts";
import { Broker, ROOT, segments } from "./broker.ts";

function lines(file: string): string[] {
  return readFileSync(resolve(ROOT, "spec/vectors", file), "utf8").split("\n");
}

const ERRORS = lines("errors.txt")
  .filter((l) => l !== "" && !l.startsWith("#"))
  .map((l) => {
    const [, code, name, description] = /^(\d+) (\S+) (.*)$/.exec(l)!;
    return { code: Number(code), name: name!, description: description! };
  });

test("every error of errors.txt has a RingError class of that name and code", () => {
  expect(ERRORS.length).toBeGreaterThanOrEqual(23);
  for (const row of ERRORS) {
    const cls = (errors as Record<string, unknown>)[row.name];
    expect(cls, row.name).toBeFunction();
    const err = errorFor(row.code, "x");
    expect(err).toBeInstanceOf(cls as typeof RingError);
    expect(err).toBeInstanceOf(RingError);
    expect(err.code).toBe(row.code);
    expect(err.name).toBe(row.name);
  }
  expect(ERROR_CLASSES.size).toBe(ERRORS.length);
});

test("the C library spells every code as errors.txt does", () => {
  for (const row of ERRORS) {
    expect(text(lib().ir_error_name(row.code))).toBe(row.name);
    expect(text(lib().ir_strerror(row.code))).toBe(row.description);
  }
});

test("an unknown code is reported as Protocol", () => {
  const err = errorFor(999, "from the future");
  expect(err).toBeInstanceOf(Protocol);
  expect(err.message).toContain("999");
});

test("testee messages match the check values of spec/testee.md", () => {
  const cases: [bigint, number, number[], bigint][] = [
    [0n, 0, [], 590684067820433389n],
    [1n, 1207, [0x1f, 0x3e, 0x5d, 0x7c], 8571947702623170026n],
    [2n, 413, [0x3e, 0x5d, 0x7c, 0x9b], -2000780879586199215n],
    [1000n, 397, [0x1f, 0x30, 0x51, 0x72], -6594530319833675456n],
  ];
  for (const [seq, len, start, sum] of cases) {
    const data = body(seq);
    expect(data.length).toBe(len);
    expect([...data.subarray(0, start.length)]).toEqual(start);
    expect(checksum(seq, data)).toBe(sum);
  }
});

interface FingerprintCase {
  n: string;
  schema: string;
  fingerprint: string;
}

function fingerprintCases(): FingerprintCase[] {
  const found: FingerprintCase[] = [];
  let n = "";
  let schema = "";
  for (const line of lines("fingerprints.txt")) {
    if (line.startsWith("# ")) n = line.slice(2);
    else if (line.startsWith("schema: ")) schema = line.slice(8);
    else if (line.startsWith("fingerprint: ")) found.push({ n, schema, fingerprint: line.slice(13) });
  }
  return found;
}

let broker: Broker;
beforeAll(async () => {
  broker = await Broker.start("vectors");
});
afterAll(async () => {
  expect(await broker.stop()).toBe(0);
  expect(segments(broker.ns)).toEqual([]);
});

test("the broker returns the fingerprint of every vector schema", async () => {
  const conn = await Connection.connect("vectors", { namespace: broker.ns });
  const cases = fingerprintCases();
  expect(cases.length).toBeGreaterThan(30);
  const refused: string[] = [];
  for (const [i, c] of cases.entries()) {
    try {
      const pub = await conn.publishChannel(`fp-${i}`, c.schema);
      expect(pub.fingerprint, c.n).toBe(c.fingerprint);
      pub.close();
    } catch (err) {
      // avsc checks schemas before the broker sees them, strictly: a refusal is listed below.
      if (!(err instanceof InvalidSchema)) throw err;
      refused.push(c.n);
    }
  }
  // avsc refuses the empty union (case 16), a schema no datum can fit; nothing else may be refused.
  expect(refused.filter((n) => !n.startsWith("16 "))).toEqual([]);
  conn.close();
});
