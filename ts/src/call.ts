/**
 * Functions: calling them (`Calls`, many in flight, each a promise settled by the pump) and providing
 * them (`ProvidedFunction`, whose handler the C library runs inside `ir_poll_one`, on the JS thread,
 * through a JSCallback: C never calls into JS from a thread of its own).
 */

import { Closed, HandlerError, errorFor, type RingError } from "./errors.ts";
import { copyOut, cstr, FFIType, JSCallback, lib, outSlot, slotPointer, text, type Pointer } from "./ffi.ts";
import { Step, type Waiter } from "./pump.ts";
import { Codec, type Schema } from "./schema.ts";
import { checkTimeout, type Connection } from "./connection.ts";

const OK = 0;
const HANDLER = 17;

/** Options of a call. */
export interface CallOptions {
  /** The request's schema (as the provider exposed it). */
  requestSchema: Schema;
  /** The response's schema. */
  responseSchema: Schema;
  /** The function's access key, if it has one. */
  key?: string;
  /** How long to wait for the response (ms); default 30 000. */
  timeoutMs?: number;
}

/** Options of `exposeFunction`. */
export interface ExposeOptions {
  /** The access key callers must present (default: none). */
  key?: string;
}

/** A function body: the decoded request in, the response (or a promise of it) out. */
export type Handler<Req, Res> = (request: Req) => Res | Promise<Res>;

/** How many requests one pump turn answers at most, so the event loop gets its turn. */
const SERVE_BATCH = 64;
/** The default call timeout. */
const CALL_TIMEOUT_MS = 30_000;

/** The C strings of one (function, key, schemas) combination, kept for reuse by later calls. */
interface Site {
  name: Buffer;
  key: Buffer | null;
  request: Codec;
  response: Codec;
  requestJson: Buffer;
  responseJson: Buffer;
}

interface InFlight {
  call: Pointer;
  resolve(datum: Buffer): void;
  reject(err: RingError): void;
  deadline: number | undefined;
}

/** The connection's calls in flight and its serving loop. */
export class Calls {
  private readonly conn: Connection;
  private readonly codecs = new Map<Schema, Codec>();
  private readonly sites = new Map<string, Site>();
  private readonly inFlight = new Set<InFlight>();
  private readonly out = outSlot();
  private readonly responsePtr = outSlot();
  private readonly responseLen = outSlot();
  private readonly callWaiter: Waiter;
  private readonly serveWaiter: Waiter;
  private callsPolled = false;
  /** How many functions this connection exposes: while any, the pump serves. */
  private serving = 0;

  constructor(conn: Connection) {
    this.conn = conn;
    this.callWaiter = { poll: (now) => this.pollCalls(now), deadline: () => this.nearestDeadline() };
    this.serveWaiter = { poll: () => this.serve(), deadline: () => undefined };
  }

  async call<Req, Res>(name: string, request: Req, options: CallOptions): Promise<Res> {
    const site = this.site(name, options);
    const datum = await this.start(site, (site.request as Codec<Req>).encode(request), options.timeoutMs);
    return (site.response as Codec<Res>).decode(datum);
  }

  callRaw(name: string, request: Uint8Array, options: CallOptions): Promise<Buffer> {
    try {
      return this.start(this.site(name, options), request, options.timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private codec(schema: Schema): Codec {
    let codec = this.codecs.get(schema);
    if (codec === undefined) {
      codec = Codec.of(schema, this.conn.longs);
      this.codecs.set(schema, codec);
    }
    return codec;
  }

  private site(name: string, options: CallOptions): Site {
    const request = this.codec(options.requestSchema);
    const response = this.codec(options.responseSchema);
    const id = `${name}\0${options.key ?? "\u0001"}\0${request.json}\0${response.json}`;
    let site = this.sites.get(id);
    if (site === undefined) {
      site = {
        name: cstr(name)!,
        key: cstr(options.key ?? null),
        request,
        response,
        requestJson: cstr(request.json)!,
        responseJson: cstr(response.json)!,
      };
      this.sites.set(id, site);
    }
    return site;
  }

  private start(site: Site, datum: Uint8Array, timeoutMs: number | undefined): Promise<Buffer> {
    const timeout = checkTimeout(timeoutMs ?? CALL_TIMEOUT_MS);
    const code = lib().ir_call_start(
      this.conn.raw(),
      site.name,
      site.key,
      site.requestJson,
      site.responseJson,
      datum.length === 0 ? new Uint8Array(1) : datum,
      datum.length,
      timeout,
      this.out,
    );
    if (code !== OK) return Promise.reject(this.conn.fail(code));
    const call = slotPointer(this.out);
    return new Promise<Buffer>((resolve, reject) => {
      const deadline = timeout < 0 ? undefined : performance.now() + timeout;
      this.inFlight.add({ call, resolve, reject, deadline });
      if (!this.callsPolled) {
        this.callsPolled = true;
        this.conn.pump.add(this.callWaiter);
      }
    });
  }

  private pollCalls(_now: number): Step {
    let progressed = false;
    for (const pending of this.inFlight) {
      if (lib().ir_call_poll(pending.call, 0) !== OK) continue;
      const code = lib().ir_call_result(pending.call, this.responsePtr, this.responseLen);
      if (code === OK) {
        pending.resolve(copyOut(slotPointer(this.responsePtr), Number(this.responseLen[0])));
      } else {
        pending.reject(errorFor(code, text(lib().ir_call_error_message(pending.call))));
      }
      lib().ir_call_free(pending.call);
      this.inFlight.delete(pending);
      progressed = true;
    }
    if (this.inFlight.size === 0) {
      this.callsPolled = false;
      return Step.Done;
    }
    return progressed ? Step.Progress : Step.Idle;
  }

  private nearestDeadline(): number | undefined {
    let nearest: number | undefined;
    for (const p of this.inFlight) {
      // The C library fails the call at its deadline; poll just after it.
      if (p.deadline !== undefined && (nearest === undefined || p.deadline < nearest)) nearest = p.deadline + 1;
    }
    return nearest;
  }

  /** One serving turn: control events (new callers) and up to SERVE_BATCH requests. */
  private serve(): Step {
    if (this.serving === 0 || this.conn.closed) return Step.Done;
    let progressed = false;
    for (let i = 0; i < SERVE_BATCH; i++) {
      const code = lib().ir_poll_one(this.conn.raw(), 0);
      if (code !== OK) {
        // BrokerGone or Closed: nothing will come any more; the calls learn it themselves.
        if (code !== 8) return Step.Done;
        break;
      }
      progressed = true;
    }
    return progressed ? Step.Progress : Step.Idle;
  }

  startServing(): void {
    this.serving++;
    this.conn.pump.add(this.serveWaiter);
  }

  stopServing(): void {
    this.serving = Math.max(0, this.serving - 1);
    if (this.serving === 0) this.conn.pump.delete(this.serveWaiter);
  }

  /** Abandons every call in flight (they reject with Closed); the connection is closing. */
  close(): void {
    for (const pending of this.inFlight) {
      lib().ir_call_free(pending.call);
      pending.reject(new Closed("the connection is closed"));
    }
    this.inFlight.clear();
    this.serving = 0;
  }
}

/** A function this app provides; `withdraw()` (or `close()`, `using`) takes it off the bus. */
export class ProvidedFunction {
  private handle: Pointer | 0;
  private readonly conn: Connection;
  private readonly calls: Calls;
  private readonly callback: JSCallback;
  /** The function's name. */
  readonly name: string;
  /** The broker's id of the function. */
  readonly functionId: number;

  private constructor(conn: Connection, calls: Calls, handle: Pointer, callback: JSCallback, name: string) {
    this.conn = conn;
    this.calls = calls;
    this.handle = handle;
    this.callback = callback;
    this.name = name;
    this.functionId = Number(lib().ir_function_id(handle));
  }

  static open<Req, Res>(
    conn: Connection,
    name: string,
    request: Codec<Req>,
    response: Codec<Res>,
    handler: Handler<Req, Res>,
    options: ExposeOptions,
  ): ProvidedFunction {
    const callback = new JSCallback(
      (_user: Pointer, datum: Pointer, len: bigint | number, reply: Pointer): number =>
        answer(request, response, handler, datum, Number(len), reply),
      { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    );
    const out = outSlot();
    const code = lib().ir_expose_function(
      conn.raw(),
      cstr(name),
      cstr(request.json),
      cstr(response.json),
      cstr(options.key ?? null),
      callback.ptr!,
      null,
      out,
    );
    if (code !== OK) {
      callback.close();
      throw conn.fail(code);
    }
    const calls = conn.calls;
    const fn = new ProvidedFunction(conn, calls, slotPointer(out), callback, name);
    conn.adopt(fn);
    calls.startServing();
    return fn;
  }

  /** Withdraws the function (pending callers get PeerGone). Idempotent. */
  withdraw(): void {
    if (this.handle === 0) return;
    const handle = this.handle;
    this.handle = 0;
    this.conn.disown(this);
    this.calls.stopServing();
    lib().ir_function_withdraw(handle);
    this.callback.close();
  }

  close(): void {
    this.withdraw();
  }

  [Symbol.dispose](): void {
    this.withdraw();
  }
}

/** Runs the handler for one request and writes its response; never throws into C. */
function answer<Req, Res>(
  request: Codec<Req>,
  response: Codec<Res>,
  handler: Handler<Req, Res>,
  datum: Pointer,
  len: number,
  reply: Pointer,
): number {
  try {
    let result = handler(request.decode(copyOut(datum, len)));
    if (result instanceof Promise) {
      // The response must be written before the C library's handler returns: a promise already
      // settled (an async handler that did not wait on anything) is read at once.
      const promise = result;
      promise.catch(() => {});
      const status = Bun.peek.status(promise);
      if (status === "pending") {
        throw new HandlerError("the handler's promise was still pending; handlers must settle synchronously");
      }
      if (status === "rejected") throw Bun.peek(promise);
      result = Bun.peek(promise) as Res;
    }
    const out = response.encode(result as Res);
    return lib().ir_response_write(reply, out.length === 0 ? new Uint8Array(1) : out, out.length);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    lib().ir_response_fail(reply, cstr(message.slice(0, 1000)));
    return HANDLER;
  }
}
