/**
 * Drives the poll-driven C library from the event loop without blocking it: an adaptive poll. While
 * something waits (a `recv()`, a call, an exposed function), each turn polls every waiter with a zero
 * timeout; after progress it turns again at once (`setImmediate`), and after a quiet spell it backs
 * off through timers up to `maxSleepMs`. With nothing waiting there is no timer at all, so an idle
 * app costs nothing.
 *
 * Why not a worker thread asleep in the C wait: a subscriber handle belongs to one thread at a time
 * and the C library has no "wait until readable" that leaves the message in place, so a worker would
 * have to receive for the main thread and hand every datum over (a copy and a cross-thread message
 * each, ~10 µs in Bun), and handlers would have to run on the worker. The poll keeps every C call on
 * the JS thread, which is also what Bun FFI is safe with.
 */

/** How the pump polls; every field has a default. */
export interface PollOptions {
  /** How long (µs) to keep turning at once after the last progress before sleeping. Default 2000. */
  spinUs?: number;
  /** The longest sleep (ms) between turns while something waits. Default 10. */
  maxSleepMs?: number;
}

/** What a waiter's poll did this turn. */
export enum Step {
  /** Nothing happened; keep waiting. */
  Idle,
  /** Something completed; the waiter still waits for more. */
  Progress,
  /** The waiter is finished; drop it. */
  Done,
}

/** Something the pump polls: a subscriber with pending receives, a pending call, a server. */
export interface Waiter {
  /** Polls without waiting. Must not throw. */
  poll(now: number): Step;
  /** The earliest deadline (performance.now() ms) at which the waiter must be polled, if any. */
  deadline(): number | undefined;
}

/** One turn does at most this much work before giving the event loop back. */
const SLICE_MS = 0.5;

export class Pump {
  private readonly waiters = new Set<Waiter>();
  private readonly spinMs: number;
  private readonly maxSleepMs: number;
  private scheduled: "none" | "immediate" | "timer" = "none";
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private lastProgress = 0;
  private sleepMs = 1;

  constructor(options: PollOptions = {}) {
    this.spinMs = (options.spinUs ?? 2000) / 1000;
    this.maxSleepMs = Math.max(1, options.maxSleepMs ?? 10);
  }

  /** Starts polling `waiter` (again); the next turn comes at once. */
  add(waiter: Waiter): void {
    this.waiters.add(waiter);
    this.lastProgress = performance.now();
    this.sleepMs = 1;
    this.schedule(0);
  }

  delete(waiter: Waiter): void {
    this.waiters.delete(waiter);
  }

  /** Stops every timer; the waiters are the owner's to settle. */
  stop(): void {
    this.waiters.clear();
    this.cancel();
  }

  private cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    this.scheduled = "none";
  }

  private schedule(delayMs: number): void {
    if (delayMs <= 0) {
      if (this.scheduled === "immediate") return;
      this.cancel();
      this.scheduled = "immediate";
      this.immediate = setImmediate(this.turn);
    } else {
      if (this.scheduled !== "none") return;
      this.scheduled = "timer";
      this.timer = setTimeout(this.turn, delayMs);
    }
  }

  private readonly turn = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.scheduled = "none";
    const started = performance.now();
    let progressed = false;
    let nearest = Infinity;
    for (const waiter of this.waiters) {
      const step = waiter.poll(performance.now());
      if (step === Step.Done) this.waiters.delete(waiter);
      else {
        const deadline = waiter.deadline();
        if (deadline !== undefined && deadline < nearest) nearest = deadline;
      }
      if (step !== Step.Idle) progressed = true;
      if (performance.now() - started > SLICE_MS) {
        progressed = true;
        break;
      }
    }
    if (this.waiters.size === 0) return;
    const now = performance.now();
    if (progressed) {
      this.lastProgress = now;
      this.sleepMs = 1;
    }
    if (now - this.lastProgress < this.spinMs) {
      this.schedule(0);
      return;
    }
    let delay = this.sleepMs;
    this.sleepMs = Math.min(this.sleepMs * 2, this.maxSleepMs);
    if (nearest !== Infinity) delay = Math.min(delay, Math.max(0, nearest - now));
    // A deadline already due still goes through a timer: the spin window is over.
    this.schedule(Math.max(delay, 0.001));
  };
}
