/**
 * The worker thread behind a function exposed with `serve: "worker"` (the default): it holds a
 * connection of its own, exposes the function there and sleeps in `ir_serve` (0 % CPU while idle,
 * woken by the futex; it looks at its stop word every 100 ms). Each request is handed to the main thread through shared memory and the
 * worker waits (Atomics.wait, on this thread only) until the main thread's handler, which may await
 * anything, has written the response. The JSCallback runs on this worker's own JS thread, inside
 * `ir_serve`: C never calls into JavaScript from a thread of its own.
 *
 * The shared words and messages: serve_protocol.ts. The main thread never imports this file (it
 * listens for messages on the global scope, which would keep a main thread alive).
 */

import { State, Word, type Report, type Start } from "./serve_protocol.ts";
import { copyOut, cstr, FFIType, JSCallback, lib, outSlot, slotPointer, text, type Pointer } from "./ffi.ts";

declare const self: Worker;

function report(message: Report): void {
  self.postMessage(message);
}

self.onmessage = (event: MessageEvent<Start>) => {
  const start = event.data;
  const words = new Int32Array(start.control);
  const data = new Uint8Array(start.data);
  const out = outSlot();
  let code = lib().ir_connect_ns(cstr(start.namespace), cstr(start.appName), out);
  if (code !== 0) {
    report({ kind: "failed", code, message: text(lib().ir_last_error(null)) });
    return;
  }
  const conn = slotPointer(out);
  // The worker sleeps on the futex at once instead of spinning: a spinning worker would take the
  // core the main thread needs to run the handler.
  lib().ir_set_wait(conn, 2, 0, 0);
  const callback = new JSCallback(
    (_user: Pointer, datum: Pointer, len: bigint | number, reply: Pointer): number => {
      try {
        return exchange(Number(datum), Number(len), reply);
      } catch (err) {
        // Nothing may be thrown into C.
        lib().ir_response_fail(reply, cstr(`the serving worker failed: ${(err as Error).message}`));
        return 17;
      }
    },
    { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  );
  const exchange = (datum: number, n: number, reply: Pointer): number => {
    if (n > data.length) {
      lib().ir_response_fail(reply, cstr(`the request of ${n} bytes does not fit the handler's ${data.length}`));
      return 10;
    }
    data.set(copyOut(datum as Pointer, n), 0);
    Atomics.store(words, Word.Length, n);
    Atomics.store(words, Word.State, State.Request);
    report({ kind: "request" });
    // Only this worker waits; the main thread runs the handler meanwhile.
    while (Atomics.load(words, Word.State) === State.Request) Atomics.wait(words, Word.State, State.Request, 100);
    const length = Atomics.load(words, Word.Length);
    const status = Atomics.load(words, Word.Code);
    // A private copy: TextDecoder and FFI want memory that no other thread writes.
    const bytes = Buffer.from(data.subarray(0, length));
    Atomics.store(words, Word.State, State.Idle);
    if (status !== 0) {
      lib().ir_response_fail(reply, cstr(bytes.toString("utf8")));
      return status;
    }
    return lib().ir_response_write(reply, length === 0 ? new Uint8Array(1) : bytes, length);
  };
  code = lib().ir_expose_function(
    conn,
    cstr(start.name),
    cstr(start.requestJson),
    cstr(start.responseJson),
    cstr(start.key),
    callback.ptr!,
    null,
    out,
  );
  if (code !== 0) {
    report({ kind: "failed", code, message: text(lib().ir_last_error(conn)) });
    lib().ir_close(conn);
    callback.close();
    return;
  }
  const fn = slotPointer(out);
  report({ kind: "ready", functionId: Number(lib().ir_function_id(fn)), conn });
  let ended = 0;
  let why = "";
  while (Atomics.load(words, Word.Stop) === 0) {
    // Returns at least every 100 ms to look at the stop word: ir_serve_stop from the main thread could
    // race with this thread freeing the connection after the broker went.
    code = lib().ir_serve(conn, 100);
    if (code !== 0) {
      ended = code;
      why = text(lib().ir_last_error(conn));
      break;
    }
  }
  lib().ir_function_withdraw(fn);
  lib().ir_close(conn);
  callback.close();
  report({ kind: "closed", code: ended, message: why });
};
