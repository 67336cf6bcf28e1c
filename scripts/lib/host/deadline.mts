// Deadlines and elapsed time on the monotonic clock (performance.now()): an NTP step or an operator's
// `date -s` during a wait must neither end it at once (clock forward) nor stretch it (clock back).
// Wall-clock time (Date.now()) is for timestamps people read, never for how long to wait.

/** milliseconds from an arbitrary origin that never goes back */
export type Clock = () => number;

export const monotonic: Clock = () => performance.now();

export interface Deadline {
  /** the time is up */
  passed(): boolean;
  /** milliseconds left (0 once passed) */
  remainingMs(): number;
  /** milliseconds since the deadline was set */
  elapsedMs(): number;
}

/** A deadline `timeoutMs` from now on `clock` (the monotonic clock unless a test passes its own). */
export function deadline(timeoutMs: number, clock: Clock = monotonic): Deadline {
  const t0 = clock();
  const end = t0 + timeoutMs;
  return {
    passed: () => clock() > end,
    remainingMs: () => Math.max(0, end - clock()),
    elapsedMs: () => clock() - t0,
  };
}
