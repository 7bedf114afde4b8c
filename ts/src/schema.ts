/**
 * Avro through avsc: a schema given as JSON text, a JSON value or an avsc `Type` becomes the text
 * sent to the broker (which computes the fingerprint) and the codec of the datums. A record that
 * does not fit its schema is rejected here, naming the field, before anything reaches shared memory.
 */

import avro from "avsc";

import { Decode, InvalidArgument, InvalidSchema } from "./errors.ts";

/** A schema as JSON text, as a parsed JSON value, or as an avsc `Type`. */
export type Schema = string | object | avro.Type;

/** How Avro `long` values appear in JavaScript. */
export type Longs = "number" | "bigint";

/**
 * `long` as a JS `bigint`: every 64-bit value round-trips (avsc's default `number` throws beyond
 * 2^53). Values are written with avsc's own zig-zag varint through an 8-byte little-endian buffer.
 */
const BIGINT_LONG = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (value: unknown) => BigInt(value as string | number),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === "bigint" && n >= -(2n ** 63n) && n < 2n ** 63n,
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** A schema ready for use: the JSON text for the broker and the codec for datums. */
export class Codec<T = unknown> {
  readonly json: string;
  readonly type: avro.Type;

  private constructor(json: string, type: avro.Type) {
    this.json = json;
    this.type = type;
  }

  /** Parses `schema`; InvalidSchema when it is not JSON or not a valid Avro schema. */
  static of<T>(schema: Schema, longs: Longs = "number"): Codec<T> {
    if (schema instanceof avro.Type) {
      return new Codec<T>(JSON.stringify(schema.schema()), schema);
    }
    let json: string;
    let value: unknown;
    if (typeof schema === "string") {
      json = schema;
      try {
        value = JSON.parse(schema);
      } catch (err) {
        throw new InvalidSchema(`the schema is not JSON: ${(err as Error).message}`);
      }
    } else {
      json = JSON.stringify(schema);
      value = schema;
    }
    try {
      const opts = longs === "bigint" ? { registry: { long: BIGINT_LONG } } : {};
      return new Codec<T>(json, avro.Type.forSchema(value as avro.Schema, opts));
    } catch (err) {
      throw new InvalidSchema(`the schema is not a valid Avro schema: ${(err as Error).message}`);
    }
  }

  /** The Avro datum of `record`; InvalidArgument naming the first field that does not fit. */
  encode(record: T): Buffer {
    let bad: string | undefined;
    const valid = this.type.isValid(record, {
      errorHook: (path: string[], value: unknown, type: avro.Type) => {
        bad ??= describe(path, value, type);
      },
    });
    if (!valid) {
      throw new InvalidArgument(`the record does not fit the schema ${this.name()}: ${bad ?? "invalid value"}`);
    }
    return this.type.toBuffer(record);
  }

  /** The record of an Avro datum; Decode when the bytes are not one datum of the schema. */
  decode(datum: Buffer): T {
    try {
      return this.type.fromBuffer(datum) as T;
    } catch (err) {
      throw new Decode(`the payload does not decode with ${this.name()}: ${(err as Error).message}`);
    }
  }

  private name(): string {
    return this.type.name ?? this.type.typeName;
  }
}

function describe(path: string[], value: unknown, type: avro.Type): string {
  const shown = typeof value === "bigint" ? `${value}n` : safeJson(value);
  const expected = type.name ?? type.typeName;
  return path.length === 0
    ? `got ${shown} (expected ${expected})`
    : `field \`${path.join(".")}\` got ${shown} (expected ${expected})`;
}

function safeJson(value: unknown): string {
  if (value === undefined) return "undefined";
  try {
    const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
    return text.length > 60 ? text.slice(0, 57) + "..." : text;
  } catch {
    return String(value);
  }
}
