/**
 * Calling functions: `Calls` keeps the connection's calls in flight (each a promise the pump settles)
 * and the serving turn of functions exposed inline (function.ts).
 */

import { Closed, errorFor, type RingError } from "./errors.ts";
import { copyOut, cstr, lib, outSlot, slotPointer, text, type Pointer } from "./ffi.ts";
import { Step, type Waiter } from "./pump.ts";
import { Codec, type Schema } from "./schema.ts";
import { checkTimeout, type Connection } from "./connection.ts";

const OK = 0;

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
