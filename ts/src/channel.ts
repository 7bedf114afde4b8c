/**
 * Channels: a `Publisher` writes records into its channel's ring; a `Subscriber` reads them, either
 * synchronously (`recvSync`, waiting inside the C library) or as promises (`recv`, `for await`)
 * driven by the connection's pump so the event loop never blocks.
 */

import { BrokerGone, Closed, Lagged, Timeout, type RingError } from "./errors.ts";
import { cstr, lib, outSlot, slotPointer, type Pointer } from "./ffi.ts";
import { Step, type Waiter } from "./pump.ts";
import type { Codec } from "./schema.ts";
import { hex } from "./listing.ts";
import { checkTimeout, type Connection } from "./connection.ts";

const OK = 0;
const TIMEOUT = 8;
const TOO_LARGE = 10;
const CLOSED = 11;
const WOULD_BLOCK = 12;
const LAGGED = 22;

/** Options of `publishChannel`. */
export interface PublishOptions {
  /** The access key subscribers must present (default: none). */
  key?: string;
  /** Ring size in bytes: a power of two from 4096 to 1 GiB (default: the broker's, 1 MiB). */
  capacity?: number;
  /** Overwrite instead of waiting for slow subscribers; they get Lagged (default false). */
  lossy?: boolean;
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** The channel's access key, if it has one. */
  key?: string;
}

/** Options of a receive. */
export interface RecvOptions {
  /** How long to wait (ms); undefined waits without limit, 0 does not wait. */
  timeoutMs?: number;
}

/** Options of a waiting send. */
export interface SendOptions {
  /** How long to wait for room (ms); undefined waits without limit. */
  timeoutMs?: number;
}

/** An empty datum still needs a valid pointer to pass through FFI. */
const EMPTY = new Uint8Array(1);

/** The publishing end of a channel. */
export class Publisher<T = unknown> {
  private handle: Pointer | 0;
  private readonly conn: Connection;
  private readonly codec: Codec<T>;
  /** The channel's name. */
  readonly name: string;
  /** CRC-64-AVRO fingerprint of the channel's schema, as the broker computed it (16 hex digits). */
  readonly fingerprint: string;
  /** The broker's id of the channel. */
  readonly channelId: number;
  /** The largest datum the channel accepts, in bytes. */
  readonly maxDatum: number;

  private constructor(conn: Connection, handle: Pointer, name: string, codec: Codec<T>) {
    this.conn = conn;
    this.handle = handle;
    this.name = name;
    this.codec = codec;
    this.fingerprint = hex(lib().ir_publisher_fingerprint(handle));
    this.channelId = Number(lib().ir_publisher_channel_id(handle));
    this.maxDatum = Number(lib().ir_publisher_max_datum(handle));
  }

  static open<T>(conn: Connection, name: string, codec: Codec<T>, options: PublishOptions): Publisher<T> {
    const out = outSlot();
    const code = lib().ir_publish_channel(
      conn.raw(),
      cstr(name),
      cstr(codec.json),
      cstr(options.key ?? null),
      options.capacity ?? 0,
      options.lossy ? 1 : 0,
      out,
    );
    if (code !== OK) throw conn.fail(code);
    const pub = new Publisher<T>(conn, slotPointer(out), name, codec);
    conn.adopt(pub);
    return pub;
  }

  /** How many subscribers have joined, read from shared memory (no broker round trip). */
  get subscribers(): number {
    return this.handle === 0 ? 0 : lib().ir_publisher_subscribers(this.handle);
  }

  /**
   * Publishes `record` without waiting: InvalidArgument (naming the field) when it does not fit the
   * schema, TooLarge beyond `maxDatum`, WouldBlock when a subscriber is a whole ring behind (block
   * policy; `send` waits instead), Closed.
   */
  publish(record: T): void {
    this.publishRaw(this.codec.encode(record));
  }

  /** Like `publish`, with the record's Avro datum (no header; the connector writes it). */
  publishRaw(datum: Uint8Array): void {
    const code = lib().ir_try_publish(this.live(), datum.length === 0 ? EMPTY : datum, datum.length);
    if (code !== OK) throw this.conn.fail(code);
  }

  /**
   * Like `publish`, but a full ring returns false instead of throwing WouldBlock: for loops that
   * retry, since building an error costs far more than the publish. Other errors still throw.
   */
  tryPublish(record: T): boolean {
    return this.tryPublishRaw(this.codec.encode(record));
  }

  /** Like `tryPublish`, with the record's Avro datum. */
  tryPublishRaw(datum: Uint8Array): boolean {
    const code = lib().ir_try_publish(this.live(), datum.length === 0 ? EMPTY : datum, datum.length);
    if (code === OK) return true;
    if (code === WOULD_BLOCK) return false;
    throw this.conn.fail(code);
  }

  /** Publishes `record`, waiting (without blocking the event loop) while the ring is full. */
  send(record: T, options: SendOptions = {}): Promise<void> {
    return this.sendRaw(this.codec.encode(record), options);
  }

  /** Like `send`, with the record's Avro datum. Rejects with Timeout when no room came in time. */
  sendRaw(datum: Uint8Array, options: SendOptions = {}): Promise<void> {
    const timeout = checkTimeout(options.timeoutMs);
    const code = lib().ir_try_publish(this.live(), datum.length === 0 ? EMPTY : datum, datum.length);
    if (code === OK) return Promise.resolve();
    if (code !== WOULD_BLOCK) return Promise.reject(this.conn.fail(code));
    const copy = Uint8Array.from(datum);
    return new Promise<void>((resolve, reject) => {
      const deadline = timeout < 0 ? undefined : performance.now() + timeout;
      const waiter: Waiter = {
        poll: (now) => {
          if (this.handle === 0) {
            reject(new Closed("the publisher is closed"));
            return Step.Done;
          }
          const code = lib().ir_try_publish(this.handle, copy.length === 0 ? EMPTY : copy, copy.length);
          if (code === OK) resolve();
          else if (code !== WOULD_BLOCK) reject(this.conn.fail(code));
          else if (deadline !== undefined && now >= deadline) {
            reject(new Timeout(`no room in the channel \`${this.name}\` within ${timeout} ms`));
          } else return Step.Idle;
          return Step.Done;
        },
        deadline: () => deadline,
      };
      this.conn.pump.add(waiter);
    });
  }

  /** Closes the channel: subscribers read what is left, then get Closed. Idempotent. */
  close(): void {
    if (this.handle === 0) return;
    const handle = this.handle;
    this.handle = 0;
    this.conn.disown(this);
    lib().ir_publisher_close(handle);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private live(): Pointer {
    if (this.handle === 0) throw new Closed("the publisher is closed");
    return this.handle;
  }
}

interface Pending<R> {
  resolve(value: R | undefined): void;
  reject(err: RingError): void;
  deadline: number | undefined;
}

/** The receiving end of a channel. Also an async iterable of its records, until Closed. */
export class Subscriber<T = unknown> implements AsyncIterable<T> {
  private handle: Pointer | 0;
  private readonly conn: Connection;
  private readonly codec: Codec<T>;
  private scratch = Buffer.alloc(4096);
  private readonly len = outSlot();
  /** The low half of `len` (little-endian): a datum is far below 4 GiB, and this skips a BigInt. */
  private readonly lenLow = new Uint32Array(this.len.buffer, 0, 1);
  private readonly pending: Pending<Buffer>[] = [];
  private readonly waiter: Waiter;
  private waiting = false;
  /** The channel's name. */
  readonly name: string;
  /** CRC-64-AVRO fingerprint of the channel's schema (16 hex digits). */
  readonly fingerprint: string;
  /** Messages lost so far (lossy channels): every Lagged adds its count. */
  missed = 0;

  private constructor(conn: Connection, handle: Pointer, name: string, codec: Codec<T>) {
    this.conn = conn;
    this.handle = handle;
    this.name = name;
    this.codec = codec;
    this.fingerprint = hex(lib().ir_subscriber_fingerprint(handle));
    this.waiter = { poll: (now) => this.pollPending(now), deadline: () => this.nearestDeadline() };
  }

  static open<T>(conn: Connection, name: string, codec: Codec<T>, options: SubscribeOptions): Subscriber<T> {
    const out = outSlot();
    const code = lib().ir_subscribe(conn.raw(), cstr(name), cstr(options.key ?? null), cstr(codec.json), out);
    if (code !== OK) throw conn.fail(code);
    const sub = new Subscriber<T>(conn, slotPointer(out), name, codec);
    conn.adopt(sub);
    return sub;
  }

  /**
   * The next record, or undefined when none came within `timeoutMs`. Rejects with Closed once the
   * channel is closed and drained, Lagged (lossy channels; `missed` says how many; receive again to
   * go on), Decode, BrokerGone, Corrupt. Never blocks the event loop.
   */
  async recv(options: RecvOptions = {}): Promise<T | undefined> {
    const datum = await this.recvRaw(options);
    return datum === undefined ? undefined : this.codec.decode(datum);
  }

  /** Like `recv`, with the record's Avro datum (a copy the caller owns). */
  recvRaw(options: RecvOptions = {}): Promise<Buffer | undefined> {
    const timeout = checkTimeout(options.timeoutMs);
    // The fast path: a message already there resolves without the pump.
    if (this.pending.length === 0) {
      const got = this.take(0);
      if (got !== TIMEOUT) return got instanceof Buffer ? Promise.resolve(got) : Promise.reject(got);
      if (timeout === 0) return Promise.resolve(undefined);
    }
    return new Promise<Buffer | undefined>((resolve, reject) => {
      const deadline = timeout < 0 ? undefined : performance.now() + timeout;
      this.pending.push({ resolve, reject, deadline });
      if (!this.waiting) {
        this.waiting = true;
        this.conn.pump.add(this.waiter);
      }
    });
  }

  /**
   * The next record, waiting inside the C library up to `timeoutMs` (undefined: without limit):
   * this blocks the event loop while it waits, for synchronous loops and workers. Undefined on
   * timeout; throws as `recv` rejects.
   */
  recvSync(options: RecvOptions = {}): T | undefined {
    const datum = this.recvRawSync(options);
    return datum === undefined ? undefined : this.codec.decode(datum);
  }

  /** Like `recvSync`, with the record's Avro datum. */
  recvRawSync(options: RecvOptions = {}): Buffer | undefined {
    const got = this.take(checkTimeout(options.timeoutMs));
    if (got === TIMEOUT) return undefined;
    if (got instanceof Buffer) return got;
    throw got;
  }

  /** The records as they come; ends when the channel is closed and drained. Lagged is counted in
   * `missed` and skipped; any other error is thrown. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      let record: T | undefined;
      try {
        record = await this.recv();
      } catch (err) {
        if (err instanceof Closed) return;
        if (err instanceof Lagged) continue;
        throw err;
      }
      if (record !== undefined) yield record;
    }
  }

  /** Leaves the channel; pending receives reject with Closed. Idempotent. */
  close(): void {
    if (this.handle === 0) return;
    const handle = this.handle;
    this.handle = 0;
    this.conn.disown(this);
    this.conn.pump.delete(this.waiter);
    this.waiting = false;
    for (const p of this.pending.splice(0)) p.reject(new Closed("the subscriber is closed"));
    lib().ir_subscriber_close(handle);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** One receive: a copy of the datum, TIMEOUT, or the error (Lagged counted in `missed`). */
  private take(timeoutMs: number): Buffer | typeof TIMEOUT | RingError {
    if (this.handle === 0) return new Closed("the subscriber is closed");
    for (;;) {
      const code = lib().ir_receive(this.handle, this.scratch, this.scratch.length, this.len, timeoutMs);
      if (code === OK) return Buffer.from(this.scratch.subarray(0, this.lenLow[0]));
      if (code === TIMEOUT) return TIMEOUT;
      if (code === TOO_LARGE) {
        // Nothing was consumed; the length says how much room the datum needs.
        const need = Number(this.len[0]);
        if (need <= this.scratch.length) return this.conn.fail(code);
        this.scratch = Buffer.alloc(Math.max(need, this.scratch.length * 2));
        continue;
      }
      if (code === LAGGED) {
        const missed = Number(lib().ir_subscriber_missed(this.handle));
        this.missed += missed;
        return new Lagged(`the subscriber lagged and missed ${missed} messages`, missed);
      }
      if (code === CLOSED) return new Closed(`the channel \`${this.name}\` is closed`);
      return this.conn.fail(code);
    }
  }

  private pollPending(now: number): Step {
    let progressed = false;
    while (this.pending.length > 0) {
      let got = this.take(0);
      // A zero-timeout receive does not look at the broker; a waiting one must learn that it died.
      if (got === TIMEOUT && this.conn.brokerGone) got = this.conn.brokerGoneError();
      if (got === TIMEOUT) break;
      const first = this.pending.shift()!;
      if (got instanceof Buffer) first.resolve(got);
      else {
        first.reject(got as RingError);
        // After Closed or BrokerGone every later receive fails the same way.
        if (got instanceof Closed || got instanceof BrokerGone) for (const p of this.pending.splice(0)) p.reject(got);
      }
      progressed = true;
    }
    // Expired receives resolve with undefined, in any order.
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const p = this.pending[i]!;
      if (p.deadline !== undefined && now >= p.deadline) {
        this.pending.splice(i, 1);
        p.resolve(undefined);
        progressed = true;
      }
    }
    if (this.pending.length === 0) {
      this.waiting = false;
      return Step.Done;
    }
    return progressed ? Step.Progress : Step.Idle;
  }

  private nearestDeadline(): number | undefined {
    let nearest: number | undefined;
    for (const p of this.pending) {
      if (p.deadline !== undefined && (nearest === undefined || p.deadline < nearest)) nearest = p.deadline;
    }
    return nearest;
  }
}
