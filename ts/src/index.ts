/**
 * impulse-ring: Ring's TypeScript connector for Bun. Channels (pub/sub) and functions (RPC) over
 * POSIX shared memory, with Avro payloads (avsc), reached through Bun FFI over libimpulse_ring.
 *
 *   await using conn = await Connection.connect("sensor");
 */

export { Connection, type ConnectOptions, type WaitStrategy } from "./connection.ts";
export {
  Publisher,
  Subscriber,
  type PublishOptions,
  type SubscribeOptions,
  type RecvOptions,
  type SendOptions,
} from "./channel.ts";
export type { CallOptions } from "./call.ts";
export { ProvidedFunction, type ExposeOptions, type Handler } from "./function.ts";
export { Codec, type Schema, type Longs } from "./schema.ts";
export type { PollOptions } from "./pump.ts";
export type { Listing, AppEntry, ChannelEntry, FunctionEntry } from "./listing.ts";
export * from "./errors.ts";
