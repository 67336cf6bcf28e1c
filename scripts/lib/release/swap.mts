// The swap: replace the one app container by one running another image, never two at once; Caddy
// holds requests meanwhile.
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { GateError } from '../cli/errors.mts';
import { waitHealthy } from '../docker/app-container.mts';
import { startApp, startAppDrained, stopApp } from '../docker/app-lifecycle.mts';
import type { SwapWindow } from './judge.mts';
import { appendJournal } from './journal.mts';
import { pollingBot } from '../config/shape.mts';

// swap and gates

export interface SwapTiming {
  /** explicit graceful stop of the old container (0 in the default recreate mode: compose up does it) */
  stopMs: number;
  /** compose up: create the new container, (recreate mode: stop + remove the old one,) start it */
  startMs: number;
  /** container start -> Docker reports healthy */
  startToHealthyMs: number;
  /** whole swap: stop begins -> healthy */
  totalMs: number;
  containerId: string;
  startedAt: string;
  /** wall clock (epoch ms) when the swap began (stop issued) and ended (healthy) */
  beganAt?: number;
  endedAt?: number;
}

export function swapMode(values: Record<string, string | undefined> = {}): 'recreate' | 'stop-first' {
  // a polling bot is always replaced stop-first: while two pollers run, Telegram answers one of them 409
  if (pollingBot(values)) return 'stop-first';
  return process.env.LAZYFLOW_SWAP === 'stop-first' ? 'stop-first' : 'recreate';
}

/**
 * Replace the one app container by one running `appTag`: the old one stops gracefully (it finishes
 * in-flight requests; Caddy holds new ones, retrying the dial for lb_try_duration), then the container
 * recreated on the new image starts. There is never a second app container running.
 */
export async function swapApp(env: OpsEnv, appTag: string, o: { log: Logger; healthTimeoutS?: number; stopTimeoutS?: number }): Promise<SwapTiming> {
  const beganAt = Date.now();
  const t0 = performance.now();
  // Default: one `compose up`. Compose creates the new container first (not started), then stops the
  // old one gracefully, removes it, and only then starts the new one: still never two app containers
  // running and never two SQLite writers, but container creation and one compose start-up are no
  // longer inside the gap, and if creating fails the old container keeps serving. Measured in
  // bench/rollout against LAZYFLOW_SWAP=stop-first (the one stop first, then the one start).
  // Either way the stop is drained (docker/app-lifecycle.mts).
  let t1 = t0;
  if (swapMode(env.values) === 'stop-first') {
    await stopApp(env, o.log, `swap to ${appTag}`, { timeoutS: o.stopTimeoutS, step: 'swap' });
    t1 = performance.now();
    await startApp(env, appTag, o.log, { step: 'swap' });
  } else {
    await startAppDrained(env, appTag, o.log, `swap to ${appTag}`, { step: 'swap' });
  }
  const t2 = performance.now();
  const { c, startToHealthyMs } = await waitHealthy(env, (o.healthTimeoutS ?? 90) * 1000, o.log);
  const t3 = performance.now();
  if (!c.Config.Image.endsWith(`:${appTag}`)) {
    throw new GateError(`after the swap the app runs ${c.Config.Image}, expected tag ${appTag}`, { step: 'swap' });
  }
  return { stopMs: t1 - t0, startMs: t2 - t1, startToHealthyMs, totalMs: t3 - t0, containerId: c.Id, startedAt: c.State.StartedAt, beganAt, endedAt: Date.now() };
}


export function roundSwap(s: SwapTiming) {
  return { stopMs: Math.round(s.stopMs), startMs: Math.round(s.startMs), startToHealthyMs: Math.round(s.startToHealthyMs), totalMs: Math.round(s.totalMs), ...(s.beganAt ? { beganAt: new Date(s.beganAt).toISOString(), endedAt: new Date(s.endedAt ?? s.beganAt).toISOString() } : {}) };
}

/** The swap as the Telegram gate and smoke judge delivery errors by: wall-clock bounds, as Telegram dates its errors. */
export function swapWindowOf(s: SwapTiming, proxyReloadAt?: number): SwapWindow {
  return { beganAt: s.beganAt ?? Date.parse(s.startedAt), endedAt: s.endedAt ?? Date.parse(s.startedAt), proxyReloadAt };
}

/**
 * Bot shape polling: the old poller stops before the pre-deploy backup (the webhook shapes hold the
 * webhook instead, webhook-hold.mts). From then on nothing confirms an update: each waits in Telegram's
 * queue (24 h) until the new release is judged, or the old poller is started again (a failed backup, a
 * revert after the backup is restored), so no update confirmed after the backup can be lost by a
 * restore of it. The journal says so first (phase stop-poller): a rollout that dies from here on is
 * taken back to what ran before by recovery, never just marked failed with the bot stopped.
 */
export async function stopPoller(env: OpsEnv, log: Logger, releaseId: string, o: { stopTimeoutS?: number } = {}): Promise<void> {
  appendJournal(env.layout.releases, { id: releaseId, phase: 'stop-poller' });
  await stopApp(env, log, `pre-deploy backup of ${releaseId}`, { timeoutS: o.stopTimeoutS, step: 'stop-poller' });
}

/** The old poller started again (the release went no further than its backup); throws when it does not come up healthy. */
export async function restartPoller(env: OpsEnv, log: Logger, appTag: string, o: { healthTimeoutS?: number } = {}): Promise<void> {
  await startApp(env, appTag, log, { step: 'backup' });
  await waitHealthy(env, (o.healthTimeoutS ?? 90) * 1000, log, { what: `the poller on ${appTag}`, step: 'backup' });
}
