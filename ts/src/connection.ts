/**
 * A connection to the broker of a namespace, and the handles made from it: publishers, subscribers,
 * exposed functions and calls. Control requests go through the C library's connection; the
 * connection's pump drives what waits (receives, calls, served functions) from the event loop.
 */

import { BrokerGone, Closed, errorFor, InvalidArgument, NoBroker, type RingError } from "./errors.ts";
import { cstr, lib, outSlot, slotPointer, text, type Pointer } from "./ffi.ts";
import { Pump, type PollOptions } from "./pump.ts";
import { Codec, type Longs, type Schema } from "./schema.ts";
import { list, type Listing } from "./listing.ts";
import { Publisher, Subscriber, type PublishOptions, type SubscribeOptions } from "./channel.ts";
import { Calls, type CallOptions } from "./call.ts";
import { ProvidedFunction, type ExposeOptions, type Handler } from "./function.ts";

/** How a connection's blocking waits behave (see `ir_set_wait`). */
export type WaitStrategy = "adaptive" | "busy-spin" | "blocking";

/** Options of `Connection.connect`. */
export interface ConnectOptions {
  /** The namespace (default: IMPULSE_RING_NS, else "impulse"). */
  namespace?: string;
  /** How the pump polls while something waits. */
  poll?: PollOptions;
  /** How synchronous receives wait in the C library (default adaptive). */
  wait?: WaitStrategy;
  /** How Avro `long` values appear: "number" (default; beyond 2^53 they fail) or "bigint". */
  longs?: Longs;
}

/** Something the connection closes when it closes. */
export interface Owned {
  close(): void;
}

const WAITS: Record<WaitStrategy, number> = { adaptive: 0, "busy-spin": 1, blocking: 2 };

/** The error of a failed C call on `conn` (NULL: the thread's last failure), as its class. */
export function failure(handle: Pointer | null, code: number): RingError {
  const message = text(lib().ir_last_error(handle));
  if (code === 1) {
    const ns = /namespace `([^`]*)`/.exec(message)?.[1] ?? "";
    return new NoBroker(message, ns);
  }
  return errorFor(code, message);
}

/** An app's connection to the broker. Close it with `close()` or a `using` declaration. */
export class Connection {
  /** The C connection; 0 once closed. */
  private handle: Pointer | 0;
  readonly pump: Pump;
  readonly longs: Longs;
  readonly namespace: string;
  /** The name the app connected with. */
  readonly appName: string;
  readonly appId: number;
  readonly wait: number;
  private readonly owned = new Set<Owned>();
  /** @internal The calls in flight and the serving loop. */
  readonly calls: Calls;

  private constructor(handle: Pointer, appName: string, options: ConnectOptions) {
    this.handle = handle;
    this.appName = appName;
    this.pump = new Pump(options.poll);
    this.longs = options.longs ?? "number";
    this.namespace = text(lib().ir_namespace(handle));
    this.appId = lib().ir_app_id(handle);
    this.wait = WAITS[options.wait ?? "adaptive"];
    this.calls = new Calls(this);
  }

  /**
   * Connects as `appName` (1 to 128 bytes, shown by `ring ls`). Resolves once the broker registered
   * the app; rejects with NoBroker (naming the namespace), LimitReached, InvalidArgument,
   * VersionMismatch, Timeout. The registration itself is one synchronous round trip to the broker.
   */
  static async connect(appName: string, options: ConnectOptions = {}): Promise<Connection> {
    const out = outSlot();
    const code = lib().ir_connect_ns(cstr(options.namespace ?? null), cstr(appName), out);
    if (code !== 0) throw failure(null, code);
    const conn = new Connection(slotPointer(out), appName, options);
    if (options.wait !== undefined) {
      const set = lib().ir_set_wait(slotPointer(out), conn.wait, 0, 0);
      if (set !== 0) {
        conn.close();
        throw failure(null, set);
      }
    }
    return conn;
  }

  /** The C handle; throws Closed once the connection is closed. */
  raw(): Pointer {
    if (this.handle === 0) throw new Closed("the connection is closed");
    return this.handle;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.handle === 0;
  }

  /** True once the connection noticed that the broker is gone (checked at most every 200 ms). */
  get brokerGone(): boolean {
    return this.handle !== 0 && lib().ir_broker_gone(this.handle) !== 0;
  }

  /** The error waiters get once the broker is gone. */
  brokerGoneError(): BrokerGone {
    return new BrokerGone(`the broker of namespace \`${this.namespace}\` is gone`);
  }

  /** The error of the last failed C call on this connection. */
  fail(code: number): RingError {
    return failure(this.handle === 0 ? null : this.handle, code);
  }

  adopt(child: Owned): void {
    this.owned.add(child);
  }

  disown(child: Owned): void {
    this.owned.delete(child);
  }

  /**
   * What is on the bus now: every app, channel and function, as the broker sees them (what `ring ls`
   * shows; keys are never listed). One synchronous round trip to the broker. Rejects with
   * BrokerGone, Closed, Timeout, Protocol.
   */
  async list(): Promise<Listing> {
    const got = list(this.raw());
    if (typeof got === "number") throw this.fail(got);
    return got;
  }

  /**
   * Publishes the channel `name` of `schema`. Subscribers must present the same schema (and `key`).
   * Rejects with NameTaken, InvalidSchema, InvalidArgument, BrokerGone, Closed, Timeout.
   */
  async publishChannel<T = unknown>(name: string, schema: Schema, options: PublishOptions = {}): Promise<Publisher<T>> {
    const codec = Codec.of<T>(schema, this.longs);
    return Publisher.open(this, name, codec, options);
  }

  /**
   * Subscribes to the channel `name`, reading with `schema` (the publisher's schema; the broker
   * compares fingerprints). Sees every message published after this resolves. Rejects with
   * UnknownChannel, WrongKey, SchemaMismatch (both fingerprints), InvalidSchema, LimitReached,
   * BrokerGone, Closed, Timeout.
   */
  async subscribe<T = unknown>(name: string, schema: Schema, options: SubscribeOptions = {}): Promise<Subscriber<T>> {
    const codec = Codec.of<T>(schema, this.longs);
    return Subscriber.open(this, name, codec, options);
  }

  /**
   * Exposes the function `name`: each request is decoded with `requestSchema`, given to `handler`,
   * and its result (or the promise's) encoded with `responseSchema`. A handler that throws or rejects
   * fails the call with HandlerError and the error's message. By default a worker thread with a
   * connection of its own serves the function (the handler may await anything, one request at a
   * time); `serve: "inline"` serves on this thread. Rejects with NameTaken, InvalidSchema,
   * BrokerGone, Closed.
   */
  async exposeFunction<Req = unknown, Res = unknown>(
    name: string,
    requestSchema: Schema,
    responseSchema: Schema,
    handler: Handler<Req, Res>,
    options: ExposeOptions = {},
  ): Promise<ProvidedFunction> {
    const request = Codec.of<Req>(requestSchema, this.longs);
    const response = Codec.of<Res>(responseSchema, this.longs);
    return ProvidedFunction.open(this, name, request, response, handler, options);
  }

  /**
   * Calls the function `name` with `request` and resolves with its response. Many calls may be in
   * flight at once. Rejects with UnknownFunction, WrongKey, SchemaMismatch, HandlerError (the
   * handler's message), PeerGone (the provider died or withdrew), Timeout, TooLarge, BrokerGone,
   * Decode. The first call to a function asks the broker for a link (one synchronous round trip).
   */
  call<Req = unknown, Res = unknown>(name: string, request: Req, options: CallOptions): Promise<Res> {
    return this.calls.call<Req, Res>(name, request, options);
  }

  /** Like `call`, with the request and response as raw Avro datums (no header). */
  callRaw(name: string, request: Uint8Array, options: CallOptions): Promise<Buffer> {
    return this.calls.callRaw(name, request, options);
  }

  /**
   * Leaves the bus: closes every publisher, subscriber and function made from this connection
   * (pending receives and calls reject with Closed), then the connection. Idempotent; never blocks
   * on the broker.
   */
  close(): void {
    if (this.handle === 0) return;
    for (const child of [...this.owned]) child.close();
    this.owned.clear();
    this.calls.close();
    this.pump.stop();
    const handle = this.handle;
    this.handle = 0;
    lib().ir_close(handle);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Checks a timeout option: a finite number ≥ 0, or undefined for no limit. */
export function checkTimeout(timeoutMs: number | undefined): number {
  if (timeoutMs === undefined) return -1;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new InvalidArgument(`timeoutMs must be a number >= 0, not ${timeoutMs}`);
  }
  return Math.floor(timeoutMs);
}
