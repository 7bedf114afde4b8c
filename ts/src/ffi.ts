/**
 * The one place that touches `bun:ffi`: finds libimpulse_ring.so, opens it once, and declares the C
 * functions of c/include/impulse_ring.h that the connector uses. Everything else in the package
 * speaks TypeScript; handles are opaque pointers (JS numbers) that never leave this package.
 *
 * Rules kept here because Bun FFI is experimental: calls are synchronous, C never calls into JS from
 * a thread of its own (handlers run inside `ir_poll_one`, on the JS thread), and memory borrowed with
 * `toArrayBuffer` is copied before the C library may reuse it.
 */

import { CString, dlopen, FFIType, JSCallback, ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const LIBRARY = "libimpulse_ring.so";

/** Where the library is looked for, in order: the variable, the repository's build, the system. */
function candidates(): string[] {
  const found: string[] = [];
  const fromEnv = process.env.IMPULSE_RING_LIB;
  if (fromEnv) found.push(fromEnv);
  // The package's own build output: ts/ sits next to target/ in the repository (and a packed copy
  // may carry a native/ directory of its own).
  const here = dirname(new URL(import.meta.url).pathname);
  found.push(resolve(here, "../native", LIBRARY));
  found.push(resolve(here, "../../target/c", LIBRARY));
  return found;
}

const symbols = {
  ir_strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  ir_error_name: { args: [FFIType.i32], returns: FFIType.cstring },
  ir_last_error: { args: [FFIType.ptr], returns: FFIType.cstring },

  ir_connect_ns: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  ir_close: { args: [FFIType.ptr], returns: FFIType.void },
  ir_namespace: { args: [FFIType.ptr], returns: FFIType.cstring },
  ir_app_id: { args: [FFIType.ptr], returns: FFIType.u32 },
  ir_broker_gone: { args: [FFIType.ptr], returns: FFIType.i32 },
  ir_set_wait: { args: [FFIType.ptr, FFIType.i32, FFIType.u32, FFIType.u32], returns: FFIType.i32 },

  ir_list: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  ir_listing_free: { args: [FFIType.ptr], returns: FFIType.void },
  ir_listing_app_count: { args: [FFIType.ptr], returns: FFIType.u64_fast },
  ir_listing_app_id: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u32 },
  ir_listing_app_name: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.cstring },
  ir_listing_app_pid: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
  ir_listing_channel_count: { args: [FFIType.ptr], returns: FFIType.u64_fast },
  ir_listing_channel_id: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u64_fast },
  ir_listing_channel_name: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.cstring },
  ir_listing_channel_owner: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u32 },
  ir_listing_channel_fingerprint: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u64 },
  ir_listing_channel_capacity: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u64_fast },
  ir_listing_channel_lossy: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  ir_listing_channel_subscribers: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u32 },
  ir_listing_channel_published: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u64_fast },
  ir_listing_function_count: { args: [FFIType.ptr], returns: FFIType.u64_fast },
  ir_listing_function_id: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u64_fast },
  ir_listing_function_name: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.cstring },
  ir_listing_function_owner: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u32 },
  ir_listing_function_request_fingerprint: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u64 },
  ir_listing_function_response_fingerprint: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u64 },

  ir_publish_channel: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.u32, FFIType.ptr],
    returns: FFIType.i32,
  },
  ir_publish: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i64], returns: FFIType.i32 },
  ir_try_publish: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  ir_publisher_max_datum: { args: [FFIType.ptr], returns: FFIType.u64_fast },
  ir_publisher_fingerprint: { args: [FFIType.ptr], returns: FFIType.u64 },
  ir_publisher_channel_id: { args: [FFIType.ptr], returns: FFIType.u64_fast },
  ir_publisher_subscribers: { args: [FFIType.ptr], returns: FFIType.u32 },
  ir_publisher_set_wait: { args: [FFIType.ptr, FFIType.i32, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
  ir_publisher_close: { args: [FFIType.ptr], returns: FFIType.void },

  ir_subscribe: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  ir_receive: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.i64], returns: FFIType.i32 },
  ir_subscriber_missed: { args: [FFIType.ptr], returns: FFIType.u64_fast },
  ir_subscriber_fingerprint: { args: [FFIType.ptr], returns: FFIType.u64 },
  ir_subscriber_set_wait: { args: [FFIType.ptr, FFIType.i32, FFIType.u32, FFIType.u32], returns: FFIType.i32 },
  ir_subscriber_close: { args: [FFIType.ptr], returns: FFIType.void },

  ir_response_write: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  ir_response_fail: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.void },
  ir_expose_function: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.function, FFIType.ptr, FFIType.ptr],
    returns: FFIType.i32,
  },
  ir_function_id: { args: [FFIType.ptr], returns: FFIType.u64_fast },
  ir_function_withdraw: { args: [FFIType.ptr], returns: FFIType.void },
  ir_poll_one: { args: [FFIType.ptr, FFIType.i64], returns: FFIType.i32 },
  ir_serve: { args: [FFIType.ptr, FFIType.i64], returns: FFIType.i32 },
  ir_serve_stop: { args: [FFIType.ptr], returns: FFIType.void },

  ir_call_start: {
    args: [
      FFIType.ptr,
      FFIType.ptr,
      FFIType.ptr,
      FFIType.ptr,
      FFIType.ptr,
      FFIType.ptr,
      FFIType.u64,
      FFIType.i64,
      FFIType.ptr,
    ],
    returns: FFIType.i32,
  },
  ir_call_poll: { args: [FFIType.ptr, FFIType.i64], returns: FFIType.i32 },
  ir_call_result: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  ir_call_error_message: { args: [FFIType.ptr], returns: FFIType.cstring },
  ir_call_free: { args: [FFIType.ptr], returns: FFIType.void },
} as const;

function open() {
  const tried = candidates();
  for (const path of tried) {
    if (existsSync(path)) return dlopen(path, symbols);
  }
  // Last, the system's library path (ld.so.conf, LD_LIBRARY_PATH): dlopen by bare name.
  try {
    return dlopen(LIBRARY, symbols);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `cannot load ${LIBRARY}: looked in ${tried.join(", ")} and the system's library path (${reason}); ` +
        "build it with `cmake -S c -B target/c && cmake --build target/c` or set IMPULSE_RING_LIB to its path",
    );
  }
}

let opened: ReturnType<typeof open> | undefined;

/** The C library's functions; the library is opened on first use, once per process. */
export function lib(): ReturnType<typeof open>["symbols"] {
  opened ??= open();
  return opened.symbols;
}

/** A NUL-terminated UTF-8 copy of `text` for a `const char *` argument (null stays NULL). */
export function cstr(text: string | null | undefined): Buffer | null {
  return text == null ? null : Buffer.from(text + "\0", "utf8");
}

/** Reads a C string result (NULL gives ""). */
export function text(value: CString | null): string {
  return value == null ? "" : value.toString();
}

/** A pointer-sized out parameter (`T **out`, `size_t *len`). */
export function outSlot(): BigUint64Array {
  return new BigUint64Array(1);
}

/** The value left in an out parameter, as a pointer (0 means NULL). */
export function slotPointer(slot: BigUint64Array): Pointer {
  return Number(slot[0]) as Pointer;
}

/** A copy of `len` bytes at `address` in C memory (the C library may reuse or free the original). */
export function copyOut(address: number, len: number): Buffer {
  if (len === 0 || address === 0) return Buffer.alloc(0);
  return Buffer.from(new Uint8Array(toArrayBuffer(address as Pointer, 0, len)));
}

export { JSCallback, FFIType, ptr, type Pointer };
