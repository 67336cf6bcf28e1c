// Maintenance mode: Caddy answers 503 with Retry-After to everyone but the toolkit, per request, from
// files in STATE_DIR/proxy (bind-mounted read-only into Caddy at /srv/proxy, next to the drain flag):
//   maintenance-until   the Unix time it ends, 10 digits (FOREVER: until --off); Caddy compares it with
//                       its clock at every request, so `--for` ends it with no timer and no reload
//   maintenance.key     a random key, new at each --on (mode 600): a request carrying it in
//                       X-Lazyflow-Maintenance-Key passes (smoke, the rollout's gates); Caddy strips it
//                       before the app and redacts it in its log
//   maintenance.html    the page browsers and the Mini App get, with the operator's message
//   maintenance.json    the toolkit's record: since, until, message, and when it ended
// Telegram sends a webhook update again after a non-2xx answer (waiting Retry-After, at most an hour,
// and drops it 24 h after it was made), so `--for` is capped below that.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { StateLayout } from '../config/state.mts';
import { writeJsonAtomic } from '../host/records.mts';
import { fsyncDir, fsyncPath } from '../host/fsutil.mts';

/** "until --off": the largest 10-digit Unix time, so Caddy's string comparison stays a numeric one */
export const FOREVER_UNIX = 9_999_999_999;
/** Telegram drops an update it could not deliver 24 h after it was made: a window must end before */
export const MAX_FOR_MS = 23 * 3_600_000;
/** the header that lets the toolkit's own requests through (docker/caddy/Caddyfile) */
export const MAINTENANCE_KEY_HEADER = 'x-lazyflow-maintenance-key';
/** a 503 Telegram records this long after the end is still the window's (it dates errors to the second) */
export const MAINTENANCE_GRACE_MS = 5_000;

export interface MaintenanceRecord {
  since: string;
  /** ISO end, null = until --off */
  until: string | null;
  message: string;
  /** set by --off (or found past its deadline by --on) */
  endedAt?: string;
}

export interface MaintenanceFiles {
  until: string;
  key: string;
  page: string;
  record: string;
}

export function maintenanceFiles(layout: Pick<StateLayout, 'root'>): MaintenanceFiles {
  const dir = path.join(layout.root, 'proxy');
  return { until: path.join(dir, 'maintenance-until'), key: path.join(dir, 'maintenance.key'), page: path.join(dir, 'maintenance.html'), record: path.join(dir, 'maintenance.json') };
}

/** What the files say, read once; every judgement below is pure over it. */
export interface MaintenanceObs {
  /** content of maintenance-until, null when absent */
  untilText: string | null;
  record: MaintenanceRecord | null;
  key: string | null;
}

export interface MaintenanceStatus {
  on: boolean;
  since?: string;
  /** ISO end; null = until --off */
  until?: string | null;
  message?: string;
  /** when the last window ended (absent while on, or when there never was one) */
  endedAt?: string;
  /** the last window, on or ended: [since, endedAt or now], for judging Telegram's errors */
  window?: { since: number; endedAt?: number };
}

const readText = (f: string): string | null => {
  try {
    return fs.readFileSync(f, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
};

export function readMaintenance(layout: Pick<StateLayout, 'root'>): MaintenanceObs {
  const f = maintenanceFiles(layout);
  let record: MaintenanceRecord | null = null;
  try {
    record = JSON.parse(readText(f.record) ?? 'null') as MaintenanceRecord | null;
  } catch {
    record = null; // a torn record: the until file alone decides, as it does for Caddy
  }
  return { untilText: readText(f.until), record, key: readText(f.key) };
}

/** Caddy's rule (docker/caddy/Caddyfile): on while the until file holds a time still ahead. */
export function maintenanceStatus(o: MaintenanceObs, now: Date): MaintenanceStatus {
  const untilS = o.untilText !== null && /^\d{10}$/.test(o.untilText) ? Number(o.untilText) : null;
  const on = untilS !== null && untilS > Math.floor(now.getTime() / 1000);
  const r = o.record;
  const since = r?.since;
  const until = untilS === null ? r?.until ?? null : untilS >= FOREVER_UNIX ? null : new Date(untilS * 1000).toISOString();
  const endedAt = on ? undefined : r?.endedAt ?? (untilS !== null && untilS < FOREVER_UNIX ? new Date(untilS * 1000).toISOString() : undefined);
  const sinceMs = since ? Date.parse(since) : NaN;
  const window = Number.isFinite(sinceMs) ? { since: sinceMs, ...(endedAt ? { endedAt: Date.parse(endedAt) } : {}) } : undefined;
  return { on, ...(since ? { since } : {}), ...(on || r ? { until, message: r?.message ?? '' } : {}), ...(endedAt ? { endedAt } : {}), ...(window ? { window } : {}) };
}

/**
 * A Telegram delivery error that maintenance caused: a 503 dated inside the window (Caddy answered it
 * so that Telegram sends the update again), not a fault of the app.
 */
export function maintenanceCausedError(info: { last_error_date?: number; last_error_message?: string }, s: Pick<MaintenanceStatus, 'window'>, now: Date): boolean {
  if (!info.last_error_date || !s.window) return false;
  const at = info.last_error_date * 1000;
  const end = s.window.endedAt ?? now.getTime();
  return /\b503\b|service unavailable/i.test(info.last_error_message ?? '') && at >= s.window.since - 1000 && at <= end + MAINTENANCE_GRACE_MS;
}

/** The headers the toolkit's own HTTPS requests carry while maintenance is on (none otherwise). */
export function maintenanceHeaders(o: MaintenanceObs, now = new Date()): Record<string, string> {
  return maintenanceStatus(o, now).on && o.key ? { [MAINTENANCE_KEY_HEADER]: o.key } : {};
}

export interface OnPlan {
  untilUnix: number;
  record: MaintenanceRecord;
  page: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const DEFAULT_MESSAGE = 'Down for maintenance. Back soon.';

/** Pure: what --on writes. `since` is kept when it is already on (a second --on changes message or end). */
export function planOn(o: { now: Date; forMs?: number; message?: string; current?: MaintenanceStatus }): OnPlan {
  const untilUnix = o.forMs === undefined ? FOREVER_UNIX : Math.ceil((o.now.getTime() + o.forMs) / 1000);
  const until = untilUnix >= FOREVER_UNIX ? null : new Date(untilUnix * 1000).toISOString();
  const message = (o.message ?? '').trim() || (o.current?.on ? o.current.message : '') || DEFAULT_MESSAGE;
  const since = o.current?.on && o.current.since ? o.current.since : o.now.toISOString();
  const back = until ? `<p>Expected back at <time datetime="${until}">${until.replace('T', ' ').slice(0, 16)} UTC</time>.</p>` : '';
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Maintenance</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:20vh auto;padding:0 1rem;text-align:center;color:#222}</style>
</head><body><h1>Maintenance</h1><p>${escapeHtml(message)}</p>${back}</body></html>
`;
  return { untilUnix, record: { since, until, message }, page };
}

function writeAtomic(file: string, text: string, mode: number): void {
  // 0755/0644 as the drain flag: Caddy (root in its container, without CAP_DAC_OVERRIDE) reads them
  // whoever runs the toolkit; only the key is 0600 (the toolkit runs as root, as Caddy does)
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode });
  fs.chmodSync(tmp, mode);
  fsyncPath(tmp);
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/**
 * Turns it on: key, page and record first, the until file last (the switch), each atomic. The key is
 * kept while it is already on, so a rollout running under it keeps passing.
 */
export function turnOn(layout: Pick<StateLayout, 'root'>, plan: OnPlan, current: MaintenanceObs, now: Date): void {
  const f = maintenanceFiles(layout);
  const keep = maintenanceStatus(current, now).on && current.key && /^[0-9a-f]{64}$/.test(current.key);
  if (!keep) writeAtomic(f.key, `${randomBytes(32).toString('hex')}\n`, 0o600);
  writeAtomic(f.page, plan.page, 0o644);
  writeJsonAtomic(f.record, plan.record, { dirMode: 0o755, fileMode: 0o644 });
  writeAtomic(f.until, `${String(plan.untilUnix).padStart(10, '0')}\n`, 0o644);
}

/**
 * Turns it off: the record says when, then the until file goes (the switch), then the key. A request
 * Caddy reads in between finds no time or no key: it is served, never refused.
 */
export function turnOff(layout: Pick<StateLayout, 'root'>, current: MaintenanceObs, now: Date): void {
  const f = maintenanceFiles(layout);
  const s = maintenanceStatus(current, now);
  if (current.record) writeJsonAtomic(f.record, { ...current.record, endedAt: s.on ? now.toISOString() : s.endedAt ?? now.toISOString() }, { dirMode: 0o755, fileMode: 0o644 });
  fs.rmSync(f.until, { force: true });
  fs.rmSync(f.key, { force: true });
  fsyncDir(path.dirname(f.until));
}
