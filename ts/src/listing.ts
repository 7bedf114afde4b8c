/**
 * What is on the bus, as the broker sees it at one moment (`conn.list()`, what `ring ls` shows):
 * apps, channels and functions. Access keys are never listed.
 */

import { lib, outSlot, slotPointer, text, type Pointer } from "./ffi.ts";

export interface AppEntry {
  /** The app's id on the broker (its slot). */
  id: number;
  name: string;
  pid: number;
}

export interface ChannelEntry {
  id: number;
  name: string;
  /** The app id of the publisher. */
  owner: number;
  /** CRC-64-AVRO fingerprint of the schema, 16 hex digits. */
  fingerprint: string;
  /** Ring size in bytes. */
  capacity: number;
  lossy: boolean;
  subscribers: number;
  published: number;
}

export interface FunctionEntry {
  id: number;
  name: string;
  /** The app id of the provider. */
  owner: number;
  requestFingerprint: string;
  responseFingerprint: string;
}

export interface Listing {
  apps: AppEntry[];
  channels: ChannelEntry[];
  functions: FunctionEntry[];
}

export function hex(fingerprint: bigint): string {
  return BigInt.asUintN(64, fingerprint).toString(16).padStart(16, "0");
}

/** Reads a listing the C library returned, then frees it. */
export function readListing(handle: Pointer): Listing {
  const l = lib();
  try {
    const apps = Array.from({ length: Number(l.ir_listing_app_count(handle)) }, (_, i) => ({
      id: l.ir_listing_app_id(handle, i),
      name: text(l.ir_listing_app_name(handle, i)),
      pid: Number(l.ir_listing_app_pid(handle, i)),
    }));
    const channels = Array.from({ length: Number(l.ir_listing_channel_count(handle)) }, (_, i) => ({
      id: Number(l.ir_listing_channel_id(handle, i)),
      name: text(l.ir_listing_channel_name(handle, i)),
      owner: l.ir_listing_channel_owner(handle, i),
      fingerprint: hex(l.ir_listing_channel_fingerprint(handle, i)),
      capacity: Number(l.ir_listing_channel_capacity(handle, i)),
      lossy: l.ir_listing_channel_lossy(handle, i) !== 0,
      subscribers: l.ir_listing_channel_subscribers(handle, i),
      published: Number(l.ir_listing_channel_published(handle, i)),
    }));
    const functions = Array.from({ length: Number(l.ir_listing_function_count(handle)) }, (_, i) => ({
      id: Number(l.ir_listing_function_id(handle, i)),
      name: text(l.ir_listing_function_name(handle, i)),
      owner: l.ir_listing_function_owner(handle, i),
      requestFingerprint: hex(l.ir_listing_function_request_fingerprint(handle, i)),
      responseFingerprint: hex(l.ir_listing_function_response_fingerprint(handle, i)),
    }));
    return { apps, channels, functions };
  } finally {
    l.ir_listing_free(handle);
  }
}

/** Asks the broker for a listing through the C connection `conn`; the error code on failure. */
export function list(conn: Pointer): Listing | number {
  const out = outSlot();
  const code = lib().ir_list(conn, out);
  return code === 0 ? readListing(slotPointer(out)) : code;
}
