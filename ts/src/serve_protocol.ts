/**
 * What the main thread and a serving worker (serve_worker.ts) share: the words of the request
 * exchange over a SharedArrayBuffer, and the messages they post each other.
 */

/** Indexes of the control words shared with the main thread. */
export enum Word {
  /** State of the exchange: Idle, Request (worker → main), Reply (main → worker). */
  State = 0,
  /** Non-zero once the main thread asks the worker to stop. */
  Stop = 1,
  /** The length in bytes of what `data` holds (request, response or error message). */
  Length = 2,
  /** The reply's code: 0 for a response, else the error code for `ir_response_fail`. */
  Code = 3,
}

export enum State {
  Idle = 0,
  Request = 1,
  Reply = 2,
}

/** What the main thread sends to start the worker. */
export interface Start {
  namespace: string;
  appName: string;
  name: string;
  requestJson: string;
  responseJson: string;
  key: string | null;
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

/** What the worker sends back. */
export type Report =
  | { kind: "ready"; functionId: number; conn: number }
  | { kind: "failed"; code: number; message: string }
  | { kind: "request" }
  | { kind: "closed"; code: number; message: string };
