// In-process background jobs: fixed-interval ticks that never overlap, stoppable for shutdown.

import type { Logger } from "./log.ts";
import type { Store } from "./db.ts";

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
