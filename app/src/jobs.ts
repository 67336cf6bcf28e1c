// In-process background jobs: fixed-interval ticks that never overlap, stoppable for shutdown.

import type { Logger } from "./log.ts";
import { RETENTION, type Retention, type Store } from "./db.ts";

export interface JobSpec {
  name: string;
  intervalMs: number;
  run: () => void | Promise<void>;
}

export interface Jobs {
  start(): void;
  /** Stops scheduling and waits for a tick that is running right now. */
  stop(): Promise<void>;
}

export function createJobs(specs: JobSpec[], log: Logger): Jobs {
  const state = specs.map((spec) => ({
    spec,
    timer: null as ReturnType<typeof setTimeout> | null,
    running: null as Promise<void> | null,
    ticks: 0,
    stopped: false,
  }));

  const tick = async (s: (typeof state)[number]) => {
    if (s.stopped) return;
    const started = performance.now();
    s.running = (async () => {
      try {
        await s.spec.run();
        s.ticks++;
        log.debug("job_tick", { job: s.spec.name, ticks: s.ticks, ms: Math.round(performance.now() - started) });
      } catch (err) {
        log.warn("job_error", { job: s.spec.name, err });
      }
    })();
    await s.running;
    s.running = null;
    if (!s.stopped) s.timer = setTimeout(() => void tick(s), s.spec.intervalMs);
  };

  return {
    start() {
      for (const s of state) {
        log.info("job_start", { job: s.spec.name, intervalMs: s.spec.intervalMs });
        void tick(s);
      }
    },
    async stop() {
      for (const s of state) {
        s.stopped = true;
        if (s.timer) clearTimeout(s.timer);
      }
      await Promise.all(state.map((s) => s.running));
      for (const s of state) log.info("job_stop", { job: s.spec.name, ticks: s.ticks });
    },
  };
}

export const HEARTBEAT_JOB = "heartbeat";

export function heartbeatJob(store: Store, intervalMs: number): JobSpec {
  return { name: HEARTBEAT_JOB, intervalMs, run: () => void store.heartbeat(HEARTBEAT_JOB) };
}

export const PRUNE_JOB = "prune";

/**
 * Deletes update bookkeeping past its retention (db.ts RETENTION), in short batches with a yield in
 * between so webhook and API writes are never held behind one long delete.
 */
export function pruneJob(store: Store, intervalMs: number, log: Logger, retention: Retention = RETENTION, nowMs: () => number = Date.now): JobSpec {
  return {
    name: PRUNE_JOB,
    intervalMs,
    async run() {
      const total: Record<string, number> = {};
      for (let pass = 0; pass < 10_000; pass++) {
        const deleted = store.pruneOnce(nowMs(), retention);
        let any = 0;
        for (const [table, n] of Object.entries(deleted)) {
          total[table] = (total[table] ?? 0) + n;
          any += n;
        }
        if (!any) break;
        await new Promise((r) => setTimeout(r, 0));
      }
      if (Object.values(total).some((n) => n > 0)) log.info("pruned", total);
    },
  };
}
