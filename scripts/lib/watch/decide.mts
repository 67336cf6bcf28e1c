// The watch's decision: (previous state, this run's observations, now) -> (new state, alerts).
// Pure and table-tested with a fake clock. Alerts go out on changes of state only: once when a
// problem is confirmed, once when it ends, and a reminder every remindAfterMs while it lasts.
import type { WatchSettings } from './settings.mts';
import type { AlertInfo } from '../notify/message.mts';
import { maintenanceCausedError } from '../maintenance/maintenance.mts';

export const STATE_VERSION = 1;

/** What one run saw. `failing: undefined` = not observed this run (keep whatever was known). */
export interface ProblemObs {
  failing: boolean | undefined;
  detail: string;
}

export interface ContainerObs {
  id: string;
  service: string;
  restartCount: number;
  oomKilled: boolean;
}

export interface Observations {
  /** problems judged directly from this run: app-down, cert-expiry, disk-low, backup-stale, offsite-stale, dead-letters, telegram, smoke */
  problems: Record<string, ProblemObs>;
  /** docker inspect of the project's containers; undefined when docker could not be asked */
  containers?: ContainerObs[];
  /** Telegram getWebhookInfo, when asked */
  telegram?: { pending: number; lastErrorDate?: number; lastErrorMessage?: string };
  /**
   * maintenance mode (scripts/lib/maintenance): while on, nothing is judged or announced; lastEndedAt
   * window (epoch ms) is the last one, so that Telegram's record of the 503s Caddy answered in it is
   * not taken for a delivery problem afterwards
   */
  maintenance?: { on: boolean; window?: { since: number; endedAt?: number } };
}

export interface ProblemState {
  since: string;
  detail: string;
  /** consecutive runs seen failing (capped) */
  runs: number;
  /** set once announced; a problem that ends before that is dropped silently */
  alertedAt?: string;
  lastAlertAt?: string;
}

export interface WatchState {
  version: number;
  lastRunAt?: string;
  problems: Record<string, ProblemState>;
  /** last seen RestartCount by container id (only the containers that exist now: bounded) */
  restarts: Record<string, number>;
  /** ids of live containers whose last seen State.OOMKilled was true (a kill is announced when it turns true) */
  oomKilled?: string[];
  lastRestartAt?: string;
  lastRestartDetail?: string;
  /** the last few pending_update_count values, oldest first (bounded) */
  pending: number[];
  /** alerts that no channel delivered: sent again at the next run (bounded: MAX_UNDELIVERED) */
  undelivered?: PendingAlert[];
}

export interface Alert extends AlertInfo {
  detail: string;
}

/** An alert on its way: when it was first due, and how many runs tried to send it. */
export interface PendingAlert extends Alert {
  at: string;
  tries: number;
}

/** undelivered alerts kept at most (the newest): a channel down for days must not grow the state */
export const MAX_UNDELIVERED = 20;

export function emptyState(): WatchState {
  return { version: STATE_VERSION, problems: {}, restarts: {}, pending: [] };
}

const MAX_RUNS = 1000;

/** Problems derived from counters the state remembers: restarts/OOM kills and Telegram's queue. */
function derived(prev: WatchState, obs: Observations, now: Date, s: WatchSettings, next: WatchState): Record<string, ProblemObs> {
  const out: Record<string, ProblemObs> = {};
  if (obs.containers) {
    const restarts: Record<string, number> = {};
    const news: string[] = [];
    // Docker sets State.OOMKilled on an OOM kill inside a container that keeps running (a child
    // process killed: no restart to count) and clears it when the container starts again
    const oomBefore = new Set(prev.oomKilled ?? []);
    for (const c of obs.containers) {
      restarts[c.id] = c.restartCount;
      const before = prev.restarts[c.id];
      const newOom = c.oomKilled && !oomBefore.has(c.id);
      if (before !== undefined && c.restartCount > before) news.push(`${c.service} restarted ${c.restartCount - before}x${c.oomKilled ? ' (OOM killed)' : ''}`);
      else if (newOom) news.push(`${c.service} was OOM killed`);
    }
    next.restarts = restarts;
    next.oomKilled = obs.containers.filter((c) => c.oomKilled).map((c) => c.id);
    if (news.length) {
      next.lastRestartAt = now.toISOString();
      next.lastRestartDetail = news.join('; ');
    }
    const last = next.lastRestartAt ? Date.parse(next.lastRestartAt) : NaN;
    const recent = Number.isFinite(last) && now.getTime() - last < s.restartQuietMs;
    out['container-restarts'] = { failing: recent, detail: recent ? next.lastRestartDetail ?? 'container restarted' : 'no restart recently' };
  }
  if (obs.telegram) {
    const pending = [...prev.pending, obs.telegram.pending].slice(-(s.pendingGrowRuns + 1));
    next.pending = pending;
    const growing = pending.length > s.pendingGrowRuns && pending.every((v, i) => i === 0 || v > pending[i - 1]);
    const errAt = obs.telegram.lastErrorDate ? obs.telegram.lastErrorDate * 1000 : NaN;
    // the 503s Caddy answered Telegram during maintenance are what made it hold the updates, not a fault
    const maintenanceError = obs.maintenance ? maintenanceCausedError({ last_error_date: obs.telegram.lastErrorDate, last_error_message: obs.telegram.lastErrorMessage }, obs.maintenance, now) : false;
    const freshError = Number.isFinite(errAt) && !maintenanceError && now.getTime() - errAt < s.telegramErrorFreshMs;
    const why: string[] = [];
    if (growing) why.push(`pending_update_count growing: ${pending.join(' → ')}`);
    if (freshError) why.push(`last_error ${new Date(errAt).toISOString()}: ${obs.telegram.lastErrorMessage ?? '?'}`);
    out['telegram-delivery'] = { failing: why.length > 0, detail: why.join('; ') || `pending ${obs.telegram.pending}, no fresh error` };
  }
  return out;
}

export function decide(prev0: WatchState | undefined, obs: Observations, now: Date, s: WatchSettings): { state: WatchState; alerts: Alert[] } {
  const prev = prev0 && prev0.version === STATE_VERSION ? prev0 : emptyState();
  const nowIso = now.toISOString();
  const next: WatchState = { version: STATE_VERSION, lastRunAt: nowIso, problems: {}, restarts: prev.restarts, oomKilled: prev.oomKilled, lastRestartAt: prev.lastRestartAt, lastRestartDetail: prev.lastRestartDetail, pending: prev.pending, undelivered: prev.undelivered };
  if (obs.maintenance?.on) {
    // the operator took the app down on purpose: announce nothing, count nothing; what the maintenance
    // did to the containers (restarts, new ids) and to Telegram's queue is not news afterwards
    if (obs.containers) {
      next.restarts = Object.fromEntries(obs.containers.map((c) => [c.id, c.restartCount]));
      next.oomKilled = obs.containers.filter((c) => c.oomKilled).map((c) => c.id);
    }
    return { state: { ...next, problems: prev.problems, pending: [] }, alerts: [] };
  }
  const all: Record<string, ProblemObs> = { ...obs.problems, ...derived(prev, obs, now, s, next) };
  // while the app is down most other checks fail with it: hold them, announce only the outage
  const appDown = all['app-down']?.failing === true;
  const alerts: Alert[] = [];
  const names = new Set([...Object.keys(prev.problems), ...Object.keys(all)]);
  for (const name of [...names].sort()) {
    const was = prev.problems[name];
    const o = all[name];
    const held = appDown && name !== 'app-down' && name !== 'disk-low' && name !== 'cert-expiry' && name !== 'backup-stale' && name !== 'offsite-stale';
    if (!o || o.failing === undefined || (held && !was?.alertedAt && o.failing)) {
      // unknown this run (or masked by the outage): keep what we knew, announce nothing
      if (was) next.problems[name] = was;
      continue;
    }
    if (held && !o.failing) {
      if (was) next.problems[name] = was;
      continue;
    }
    if (o.failing) {
      const p: ProblemState = was ? { ...was, detail: o.detail, runs: Math.min(was.runs + 1, MAX_RUNS) } : { since: nowIso, detail: o.detail, runs: 1 };
      if (!p.alertedAt && p.runs >= s.confirmRuns) {
        p.alertedAt = nowIso;
        p.lastAlertAt = nowIso;
        alerts.push({ problem: name, state: 'started', since: p.since, detail: o.detail });
      } else if (p.alertedAt && p.lastAlertAt && now.getTime() - Date.parse(p.lastAlertAt) >= s.remindAfterMs) {
        p.lastAlertAt = nowIso;
        alerts.push({ problem: name, state: 'reminder', since: p.since, detail: o.detail });
      }
      next.problems[name] = p;
    } else if (was?.alertedAt) {
      alerts.push({ problem: name, state: 'resolved', since: was.since, detail: o.detail });
    }
    // a problem that ended before it was confirmed is dropped without a word
  }
  return { state: next, alerts };
}

/**
 * What this run sends: the alerts no channel delivered at earlier runs (oldest first), then this
 * run's. Nothing while maintenance is on: they wait for its end.
 */
export function alertsToSend(state: WatchState, fresh: Alert[], now: Date, maintenanceOn = false): PendingAlert[] {
  if (maintenanceOn) return [];
  return [...(state.undelivered ?? []), ...fresh.map((a) => ({ ...a, at: now.toISOString(), tries: 0 }))];
}

/** An alert is delivered when a channel took it; with no channel configured there is nothing to try again. */
export function delivered(results: { ok: boolean }[]): boolean {
  return results.length === 0 || results.some((r) => r.ok);
}

/**
 * The state to save once the sends are done: an alert no channel delivered is kept and sent again at
 * the next run (the newest MAX_UNDELIVERED; state is saved only after the sends, so a run that dies
 * mid-send announces again rather than never).
 */
export function afterSend(state: WatchState, sent: { alert: PendingAlert; delivered: boolean }[], maintenanceOn = false): WatchState {
  if (maintenanceOn) return state;
  const undelivered = sent.filter((x) => !x.delivered).map((x) => ({ ...x.alert, tries: x.alert.tries + 1 }));
  return { ...state, undelivered: undelivered.slice(-MAX_UNDELIVERED) };
}

/** Problems currently announced (what status shows as open alerts). */
export function openAlerts(state: WatchState | undefined): { problem: string; since: string; detail: string }[] {
  if (!state) return [];
  return Object.entries(state.problems)
    .filter(([, p]) => p.alertedAt)
    .map(([problem, p]) => ({ problem, since: p.since, detail: p.detail }));
}

/** The run was healthy: nothing failing this run (announced or not). */
export function healthy(state: WatchState): boolean {
  return Object.values(state.problems).length === 0;
}
