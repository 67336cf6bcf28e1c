// Gates judge the release, not the host: pure rules for what a failed gate may blame on the new
// release. Pre-existing conditions (low disk, a certificate near expiry, an old backup, dead
// letters) are warnings; a Telegram delivery error counts only if the new release caused it.
import type { SmokeResult } from '../checks/evaluate.mts';

/** smoke checks that judge the host or its history, never what a release changed */
export const HOST_CONDITION_CHECKS: ReadonlySet<string> = new Set(['disk', 'tls', 'backups', 'dead-letters', 'dead_letters', 'deadletters']);

export function judgeSmoke(results: SmokeResult[]): { failed: SmokeResult[]; warnings: SmokeResult[] } {
  const failed: SmokeResult[] = [];
  const warnings: SmokeResult[] = [];
  for (const r of results) {
    if (r.status === 'fail' && HOST_CONDITION_CHECKS.has(r.name)) warnings.push({ ...r, status: 'warn', detail: `${r.detail} (a condition of the host, not caused by this release: fix it, the release stays)` });
    else if (r.status === 'fail') failed.push(r);
    else if (r.status === 'warn') warnings.push(r);
  }
  return { failed, warnings };
}

/** [began, ended] of the swap in epoch ms (wall clock: Telegram dates its errors by it) */
export interface SwapWindow {
  beganAt: number;
  endedAt: number;
  /** when the release's front end made Caddy reload (it closes idle keep-alive connections then) */
  proxyReloadAt?: number;
}

export type WebhookErrorVerdict = 'none' | 'before-swap' | 'swap-window' | 'release';

/** Telegram reports errors with second resolution and retries held requests a little later. */
export const SWAP_WINDOW_GRACE_MS = 5_000;

/**
 * A delivery that timed out is dated when Telegram gave up on it, up to its webhook timeout after it
 * was sent (the fake Bot API's default is 10 s; Telegram's is not documented and longer): a delivery
 * Caddy held through the swap may time out this long after the swap ended.
 */
export const DELIVERY_TIMEOUT_GRACE_MS = 65_000;

/**
 * Whose is the last delivery error? Before the swap began: an older run's. Inside the swap window
 * and a 502/503/504 (the old app's in-flight lame-duck 503, Caddy giving up a held request), or a
 * connection closed right when Caddy reloaded the release's front end: the swap's own, and Telegram
 * redelivers. Anything else, or any error after the window: the release's.
 */
export function judgeWebhookError(info: { last_error_date?: number; last_error_message?: string }, w: SwapWindow): WebhookErrorVerdict {
  if (!info.last_error_date) return 'none';
  const at = info.last_error_date * 1000;
  if (at < w.beganAt - 1000) return 'before-swap';
  const transient = /\b50[234]\b|service unavailable|bad gateway|gateway time-?out/i.test(info.last_error_message ?? '');
  if (transient && at <= w.endedAt + SWAP_WINDOW_GRACE_MS) return 'swap-window';
  // a delivery that got no answer in time: Caddy held it through the swap (a release that hangs on
  // every update is caught by the queue not moving, judgeQueue)
  const timedOut = /timeout expired|timed out/i.test(info.last_error_message ?? '');
  if (timedOut && at <= w.endedAt + DELIVERY_TIMEOUT_GRACE_MS) return 'swap-window';
  // Caddy's reload closes idle connections; a delivery that raced that close was never answered, and
  // Telegram sends it again: the proxy's doing, not the release's
  const dropped = /connection (closed|reset)|reset by peer/i.test(info.last_error_message ?? '');
  if (dropped && w.proxyReloadAt !== undefined && at >= w.proxyReloadAt - 1000 && at <= w.proxyReloadAt + SWAP_WINDOW_GRACE_MS) return 'swap-window';
  return 'release';
}

/** One look at Telegram's queue for the release's webhook during the Telegram gate. */
export interface QueueObs {
  /** webhook url is APP_URL/webhook/SECRET */
  urlOk: boolean;
  pending: number;
  /**
   * the highest update_id the app has recorded as handled (its update_id tables, see the contract's
   * update-dedupe item), null when the app keeps no such table
   */
  handledMax: number | null;
}

export interface QueueVerdict {
  status: 'pass' | 'wait';
  detail: string;
}

/**
 * Does the release take updates off Telegram's queue? Drained (pending under pendingMax) is enough;
 * so is progress, because a busy bot's queue never drains while a deploy runs and a slow Bot API is
 * not the release's doing: an update handled since the gate began (the app's own record), or, for an
 * app that keeps no record, a queue that shrank between two looks. Otherwise wait, until the gate's
 * deadline fails the release.
 */
export function judgeQueue(first: QueueObs, prev: QueueObs | undefined, now: QueueObs, pendingMax: number): QueueVerdict {
  if (!now.urlOk) return { status: 'wait', detail: 'webhook url is not the release\'s yet' };
  if (now.pending < pendingMax) return { status: 'pass', detail: `url ok, pending ${now.pending}` };
  if (now.handledMax !== null && now.handledMax > (first.handledMax ?? -Infinity)) {
    return { status: 'pass', detail: `url ok, queue moving: the app handled updates up to ${now.handledMax} since the gate began, pending ${now.pending}` };
  }
  if (now.handledMax === null && prev && now.pending < prev.pending) {
    return { status: 'pass', detail: `url ok, queue moving: pending fell from ${prev.pending} to ${now.pending}` };
  }
  return { status: 'wait', detail: `pending_update_count ${now.pending} >= ${pendingMax} and no update handled since the gate began` };
}

/** One look at Telegram's queue for a polling bot (bot shape polling): getWebhookInfo and the app's own record. */
export interface PollingObs {
  /** getWebhookInfo's url: '' when no webhook is set (a set webhook makes every getUpdates answer 409) */
  url: string;
  pending: number;
  handledMax: number | null;
}

/**
 * Does the polling release take updates off Telegram's queue? No webhook may be set (Telegram refuses
 * getUpdates while one is: the bot cannot poll), and then the same rule as for a webhook (judgeQueue):
 * drained, or moving since the gate began. Otherwise wait, until the gate's deadline fails the release.
 */
export function judgePollingQueue(first: PollingObs, prev: PollingObs | undefined, now: PollingObs, pendingMax: number): QueueVerdict {
  if (now.url) return { status: 'wait', detail: `a webhook is set (${now.url}): Telegram answers getUpdates with 409 Conflict while it is, so the bot cannot poll` };
  const q = (o: PollingObs): QueueObs => ({ urlOk: true, pending: o.pending, handledMax: o.handledMax });
  const v = judgeQueue(q(first), prev && q(prev), q(now), pendingMax);
  return { ...v, detail: v.detail.replace(/^url ok/, 'no webhook set') };
}

/** What the rollout knows when a gate has failed, for holdAfterFailedGate. */
export interface FailedGateObs {
  phase: string;
  /** bot shape polling */
  polling: boolean;
  /** the app's update_id record grew since the release could first answer updates */
  answered: boolean;
  backupId: string | null;
  userVersionBefore: number | null;
  userVersionNow: number | null;
}

/**
 * After a failed gate, keep the release running, held for the operator, instead of the automatic revert?
 * Only when going back would restore the pre-deploy backup (its schema moved) and the release has
 * already answered Telegram updates that the restore would drop (Telegram never resends them): a webhook
 * release can answer only from its Telegram gate on (the webhook hold keeps updates out before), a
 * poller from its start (nothing holds a poller's getUpdates).
 */
export function holdAfterFailedGate(o: FailedGateObs): boolean {
  const couldAnswer = o.phase === 'telegram' || o.polling;
  const restores = Boolean(o.backupId) && o.userVersionBefore !== null && o.userVersionNow !== o.userVersionBefore;
  return couldAnswer && o.answered && restores;
}
