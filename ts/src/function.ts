/**
 * Providing functions. The C library writes a response before its handler returns, so a handler
 * that awaits needs somewhere to wait: by default (`serve: "worker"`) a worker thread serves the
 * function from a connection of its own and hands each request to the main thread, where the handler
 * may await anything (serve_worker.ts). `serve: "inline"` answers inside `ir_poll_one` on the JS
 * thread instead: no thread hop, but the handler must settle synchronously.
 */

import { errorFor, HandlerError, TooLarge } from "./errors.ts";
import { copyOut, cstr, FFIType, JSCallback, lib, outSlot, slotPointer, type Pointer } from "./ffi.ts";
import type { Codec } from "./schema.ts";
import type { Connection } from "./connection.ts";
import { State, Word, type Report, type Start } from "./serve_protocol.ts";

const OK = 0;
const HANDLER = 17;
const CLOSED = 11;

/** A function body: the decoded request in, the response (or a promise of it) out. */
export type Handler<Req, Res> = (request: Req) => Res | Promise<Res>;

/** Options of `exposeFunction`. */
export interface ExposeOptions {
  /** The access key callers must present (default: none). */
  key?: string;
  /**
   * Where requests are answered: "worker" (default) lets the handler await anything, one request
   * at a time, from a worker thread asleep in the C library; "inline" answers on the JS thread with
   * no thread hop, and a handler whose promise is still pending fails the call with HandlerError.
   */
  serve?: "worker" | "inline";
  /** Worker mode: the largest request or response datum in bytes (default 1 MiB). */
  maxDatum?: number;
}

interface Server {
  readonly functionId: number;
  stop(): Promise<void>;
}

/** A function this app provides; `withdraw()` (or `close()`, `using`) takes it off the bus. */
export class ProvidedFunction {
  private server: Server | undefined;
  private readonly conn: Connection;
  private stopped: Promise<void> | undefined;
  /** The function's name. */
  readonly name: string;
  /** The broker's id of the function. */
  readonly functionId: number;

  private constructor(conn: Connection, server: Server, name: string) {
    this.conn = conn;
    this.server = server;
    this.name = name;
    this.functionId = server.functionId;
  }

  static async open<Req, Res>(
    conn: Connection,
    name: string,
    request: Codec<Req>,
    response: Codec<Res>,
    handler: Handler<Req, Res>,
    options: ExposeOptions,
  ): Promise<ProvidedFunction> {
    const server =
      options.serve === "inline"
        ? InlineServer.open(conn, name, request, response, handler, options)
        : await WorkerServer.open(conn, name, request, response, handler, options);
    const fn = new ProvidedFunction(conn, server, name);
    conn.adopt(fn);
    return fn;
  }

  /** Withdraws the function (pending callers get PeerGone); resolves once it is off the bus. Idempotent. */
  withdraw(): Promise<void> {
    if (this.server !== undefined) {
      const server = this.server;
      this.server = undefined;
      this.conn.disown(this);
      this.stopped = server.stop();
    }
    return this.stopped ?? Promise.resolve();
  }

  /** Starts withdrawing the function without waiting. */
  close(): void {
    void this.withdraw();
  }

  [Symbol.dispose](): void {
    void this.withdraw();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.withdraw();
  }
}

/** Runs the handler and encodes its response: the datum, or the error's message for HandlerError. */
async function run<Req, Res>(
  request: Codec<Req>,
  response: Codec<Res>,
  handler: Handler<Req, Res>,
  datum: Buffer,
): Promise<{ code: number; bytes: Uint8Array }> {
  try {
    return { code: OK, bytes: response.encode(await handler(request.decode(datum))) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { code: HANDLER, bytes: Buffer.from(message.slice(0, 1000)) };
  }
}

/** Serves from a worker thread with a connection of its own; the handler runs here and may await. */
class WorkerServer implements Server {
  readonly functionId: number;
  private readonly worker: Worker;
  private readonly words: Int32Array;
  private readonly closed: Promise<void>;

  private constructor(worker: Worker, words: Int32Array, functionId: number, closed: Promise<void>) {
    this.worker = worker;
    this.words = words;
    this.functionId = functionId;
    this.closed = closed;
  }

  static open<Req, Res>(
    conn: Connection,
    name: string,
    request: Codec<Req>,
    response: Codec<Res>,
    handler: Handler<Req, Res>,
    options: ExposeOptions,
  ): Promise<WorkerServer> {
    const control = new SharedArrayBuffer(16);
    const data = new SharedArrayBuffer(options.maxDatum ?? 1 << 20);
    const words = new Int32Array(control);
    const bytes = new Uint8Array(data);
    const worker = new Worker(new URL("./serve_worker.ts", import.meta.url).href);
    let closedResolve: () => void = () => {};
    const closed = new Promise<void>((resolve) => (closedResolve = resolve));
    const answer = async () => {
      const datum = Buffer.from(bytes.subarray(0, Atomics.load(words, Word.Length)));
      let reply = await run(request, response, handler, datum);
      if (reply.bytes.length > bytes.length) {
        const message = new TooLarge(`the response of ${reply.bytes.length} bytes exceeds maxDatum ${bytes.length}`);
        reply = { code: HANDLER, bytes: Buffer.from(message.message) };
      }
      if (Atomics.load(words, Word.State) !== State.Request) return; // withdrawn meanwhile
      bytes.set(reply.bytes, 0);
      Atomics.store(words, Word.Length, reply.bytes.length);
      Atomics.store(words, Word.Code, reply.code);
      Atomics.store(words, Word.State, State.Reply);
      Atomics.notify(words, Word.State);
    };
    return new Promise<WorkerServer>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<Report>) => {
        const report = event.data;
        if (report.kind === "ready") resolve(new WorkerServer(worker, words, report.functionId, closed));
        else if (report.kind === "request") void answer();
        else if (report.kind === "failed") {
          worker.terminate();
          reject(errorFor(report.code, report.message));
        } else {
          closedResolve();
          worker.terminate();
        }
      };
      worker.onerror = (event) => {
        closedResolve();
        reject(new HandlerError(`the serving worker failed: ${event.message}`));
      };
      const start: Start = {
        namespace: conn.namespace,
        appName: conn.appName,
        name,
        requestJson: request.json,
        responseJson: response.json,
        key: options.key ?? null,
        control,
        data,
      };
      worker.postMessage(start);
    });
  }

  stop(): Promise<void> {
    Atomics.store(this.words, Word.Stop, 1);
    // While it serves, the worker keeps the process alive, as a listening socket would; once it is
    // told to stop it must not.
    this.worker.unref();
    // A request still with the handler is answered Closed, so the worker can leave ir_serve.
    if (Atomics.compareExchange(this.words, Word.State, State.Request, State.Reply) === State.Request) {
      Atomics.store(this.words, Word.Length, 0);
      Atomics.store(this.words, Word.Code, CLOSED);
      Atomics.notify(this.words, Word.State);
    }
    return this.closed;
  }
}

/** Serves inside `ir_poll_one` on the JS thread (the connection's pump turns it). */
class InlineServer implements Server {
  readonly functionId: number;
  private readonly conn: Connection;
  private readonly handle: Pointer;
  private readonly callback: JSCallback;

  private constructor(conn: Connection, handle: Pointer, callback: JSCallback) {
    this.conn = conn;
    this.handle = handle;
    this.callback = callback;
    this.functionId = Number(lib().ir_function_id(handle));
  }

  static open<Req, Res>(
    conn: Connection,
    name: string,
    request: Codec<Req>,
    response: Codec<Res>,
    handler: Handler<Req, Res>,
    options: ExposeOptions,
  ): InlineServer {
    const callback = new JSCallback(
      (_user: Pointer, datum: Pointer, len: bigint | number, reply: Pointer): number =>
        answerNow(request, response, handler, datum, Number(len), reply),
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
    const server = new InlineServer(conn, slotPointer(out), callback);
    conn.calls.startServing();
    return server;
  }

  stop(): Promise<void> {
    this.conn.calls.stopServing();
    if (!this.conn.closed) lib().ir_function_withdraw(this.handle);
    this.callback.close();
    return Promise.resolve();
  }
}

/** Runs the handler for one request inside the C library's handler; never throws into C. */
function answerNow<Req, Res>(
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
        throw new HandlerError("the handler's promise was still pending; inline handlers must settle at once");
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
