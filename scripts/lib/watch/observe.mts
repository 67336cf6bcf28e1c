// What one watch run looks at: the smoke checks plus watch-only facts (certificate days, newest
// backup age, free disk, dead letters, container restarts, Telegram's queue). Gathering is I/O;
// turning the facts into problems is pure (judgeFacts) and unit-tested.
import fs from 'node:fs';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { DAY_MS, HOUR_MS, type DeadLettersObs, type SmokeResult, type TlsObs } from '../checks/evaluate.mts';
import { inspectProject, readDeadLetters, runSmoke, smokeTarget } from '../checks/smoke.mts';
import { tlsProbe } from '../checks/http.mts';
import { listBackups } from '../backup/manifest.mts';
import { getWebhookInfo, hostApiRoot, redactToken } from '../telegram/bot-api.mts';
import type { ContainerObs, Observations, ProblemObs } from './decide.mts';
import type { WatchSettings } from './settings.mts';
import { readJsonRecord, type UploadRecord } from '../host/records.mts';
import { formatAge } from '../cli/log.mts';
import { maintenanceStatus, readMaintenance } from '../maintenance/maintenance.mts';

/** under this lifetime a certificate is short-lived (twice the tls check's 14-day warning: evalTls in checks/evaluate.mts) */
export const SHORT_LIVED_CERT_DAYS = 28;

/** smoke checks that have a watch problem of their own (judged from the facts, not the verdict) */
const OWN_PROBLEM = new Set(['containers', 'health', 'tls', 'disk', 'backups', 'dead-letters']);

/** how far ahead of the clock a backup's created_at may be (clock adjustments, a slow NTP step) before it counts as from the future */
export const FUTURE_TOLERANCE_MS = 10 * 60 * 1000;

export interface Facts {
  smoke: SmokeResult[];
  tls?: TlsObs;
  disk?: { path: string; freeBytes: number };
  /** newest local backup; null = none; undefined = not looked */
  newestBackup?: { id: string; createdAt: string } | null;
  /** backups dated after now (taken while the clock ran ahead): never "newest", and an alert of their own */
  futureBackups?: { id: string; createdAt: string }[];
  deadLetters?: DeadLettersObs;
  /** offsite: undefined = not looked; configured false = OFFSITE_REPOSITORY empty; newest = last-upload.json (null = none) */
  offsite?: { configured: boolean; newest: UploadRecord | null | { error: string } };
}

export function judgeFacts(f: Facts, s: WatchSettings, now: Date): Record<string, ProblemObs> {
  const out: Record<string, ProblemObs> = {};
  const byName = new Map(f.smoke.map((r) => [r.name, r]));
  const down = ['containers', 'health'].map((n) => byName.get(n)).filter((r): r is SmokeResult => Boolean(r));
  if (down.length) {
    const failing = down.filter((r) => r.status === 'fail');
    out['app-down'] = { failing: failing.length > 0, detail: failing.length ? failing.map((r) => `${r.name}: ${r.detail}`).join('; ') : 'app healthy' };
  }
  if (f.tls) {
    const exp = f.tls.validTo ? Date.parse(f.tls.validTo) : NaN;
    if (f.tls.error || !Number.isFinite(exp)) out['cert-expiry'] = { failing: undefined, detail: `certificate not readable: ${f.tls.error ?? f.tls.validTo}` };
    else {
      const days = (exp - now.getTime()) / DAY_MS;
      const from = f.tls.validFrom ? Date.parse(f.tls.validFrom) : NaN;
      // a short-lived certificate (Caddy's internal CA: 12 h; Let's Encrypt's 6-day profile) never has
      // 14 days: judge it by the smoke tls check, which judges it against its lifetime. What is short-lived
      // is the certificate's property (the tls check's own line), never the operator's WATCH_CERT_DAYS:
      // a larger threshold must make more certificates "near expiry", not exempt them.
      const shortLived = Number.isFinite(from) && (exp - from) / DAY_MS < SHORT_LIVED_CERT_DAYS;
      const failing = shortLived ? byName.get('tls')?.status === 'fail' : days < s.certWarnDays;
      out['cert-expiry'] = { failing, detail: `certificate expires in ${days.toFixed(1)} days (${new Date(exp).toISOString().slice(0, 10)})${failing ? `, under ${s.certWarnDays}` : ''}` };
    }
  }
  if (f.disk) {
    const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
    const failing = f.disk.freeBytes < s.minFreeBytes;
    out['disk-low'] = { failing, detail: `${mib(f.disk.freeBytes)} free at ${f.disk.path}${failing ? ` (< ${mib(s.minFreeBytes)})` : ''}` };
  }
  // a limit as the operator set it: hours, or (under an hour) the age format ("90s", "15m")
  const limitText = (ms: number) => (ms >= HOUR_MS ? `${(ms / HOUR_MS).toFixed(0)} h` : formatAge(ms));
  if (f.newestBackup !== undefined) {
    const b = f.newestBackup;
    const age = b ? now.getTime() - Date.parse(b.createdAt) : Infinity;
    const failing = !(age <= s.backupMaxAgeMs);
    out['backup-stale'] = {
      failing,
      detail: b ? `newest backup ${b.id} is ${(age / HOUR_MS).toFixed(1)} h old${failing ? ` (> ${limitText(s.backupMaxAgeMs)})` : ''}` : 'no backup yet: node scripts/backup.mts --config .env.prod',
    };
    // a backup dated in the future would otherwise stay "newest" and keep this alert quiet until the clock catches up
    const future = (f.futureBackups ?? []).filter((x) => Date.parse(x.createdAt) - now.getTime() > FUTURE_TOLERANCE_MS);
    if (future.length) {
      out['backup-stale'] = {
        failing: true,
        detail: `backup(s) dated in the future (the clock ran ahead when they were taken): ${future.map((x) => `${x.id} (${x.createdAt})`).join(', ')}; judged without them: ${out['backup-stale'].detail}. Check the clock (timedatectl) and take a backup: node scripts/backup.mts --config .env.prod`,
      };
    }
  }
  if (f.offsite) {
    const o = f.offsite;
    const n = o.newest;
    const limit = limitText(s.offsiteMaxAgeMs);
    if (!o.configured) out['offsite-stale'] = { failing: false, detail: 'offsite not configured (OFFSITE_REPOSITORY empty)' };
    else if (n && 'error' in n) out['offsite-stale'] = { failing: true, detail: `offsite upload record unreadable: ${n.error}` };
    else if (!n) out['offsite-stale'] = { failing: true, detail: 'no offsite copy recorded yet: node scripts/offsite.mts --config .env.prod --push' };
    else {
      const age = now.getTime() - Date.parse(n.backupCreatedAt);
      const failing = !(age <= s.offsiteMaxAgeMs);
      out['offsite-stale'] = { failing, detail: `newest offsite copy ${n.backupId} is ${(age / HOUR_MS).toFixed(1)} h old${failing ? ` (> ${limit}): node scripts/offsite.mts --config .env.prod --push` : ''}` };
    }
  }
  if (f.deadLetters) {
    const d = f.deadLetters;
    if ('table' in d && d.table) out['dead-letters'] = { failing: d.count > 0, detail: `${d.count} dead letter(s)${d.newest?.last_error ? `, newest: ${String(d.newest.last_error).slice(0, 120)}` : ''}` };
  }
  const others = f.smoke.filter((r) => !OWN_PROBLEM.has(r.name));
  if (others.length) {
    const failing = others.filter((r) => r.status === 'fail');
    out.smoke = { failing: failing.length > 0, detail: failing.length ? failing.map((r) => `${r.name}: ${r.detail}`).join('; ') : 'all smoke checks pass' };
  }
  return out;
}

export interface ObserveOptions {
  log?: Logger;
  ca?: string;
  connect?: string;
  telegramApiRoot?: string;
  timeoutMs?: number;
  now?: Date;
}

export async function observe(env: OpsEnv, s: WatchSettings, o: ObserveOptions = {}): Promise<{ obs: Observations; facts: Facts }> {
  const now = o.now ?? new Date();
  const smokeOpts = { log: o.log, ca: o.ca, connect: o.connect, telegramApiRoot: o.telegramApiRoot, timeoutMs: o.timeoutMs, minFreeBytes: s.minFreeBytes };
  const token = env.values.BOT_TOKEN ?? '';
  const [report, tls, containers, telegram] = await Promise.all([
    runSmoke(env, smokeOpts),
    smokeTarget(env, smokeOpts).then((t) => tlsProbe(t, o.timeoutMs ?? 10_000)).catch((e: Error) => ({ authorized: false, error: e.message }) as TlsObs),
    inspectProject(env)
      .then((by) =>
        Object.entries(by).flatMap(([service, list]) =>
          list.map((c): ContainerObs => {
            const x = c as unknown as { Id: string; RestartCount?: number; State: { OOMKilled?: boolean } };
            return { id: x.Id, service, restartCount: x.RestartCount ?? 0, oomKilled: Boolean(x.State.OOMKilled) };
          }),
        ),
      )
      .catch(() => undefined),
    token
      ? getWebhookInfo(hostApiRoot(env.values, o.telegramApiRoot), token)
          .then((i) => ({ pending: i.pending_update_count, lastErrorDate: i.last_error_date, lastErrorMessage: i.last_error_message }))
          .catch((e: Error) => {
            o.log?.debug(`watch: getWebhookInfo: ${redactToken(e.message, token)}`);
            return undefined;
          })
      : Promise.resolve(undefined),
  ]);
  let disk: Facts['disk'];
  try {
    const st = fs.statfsSync(env.layout.root);
    disk = { path: env.layout.root, freeBytes: Number(st.bavail) * Number(st.bsize) };
  } catch {
    disk = undefined;
  }
  // a backup dated ahead of the clock is not the newest: its age says nothing (judgeFacts reports it)
  const all = listBackups(env.layout).backups;
  const tNow = Date.now();
  const newest = all.find((b) => b.createdAt.getTime() - tNow <= FUTURE_TOLERANCE_MS);
  const futureBackups = all.filter((b) => b.createdAt.getTime() - tNow > FUTURE_TOLERANCE_MS).map((b) => ({ id: b.id, createdAt: b.createdAt.toISOString() }));
  const facts: Facts = {
    smoke: report.results,
    tls,
    disk,
    newestBackup: newest ? { id: newest.id, createdAt: newest.createdAt.toISOString() } : null,
    futureBackups,
    deadLetters: readDeadLetters(env.layout.db),
    offsite: { configured: Boolean((env.values.OFFSITE_REPOSITORY ?? '').trim()), newest: readUpload(env.layout.offsiteLastUpload) },
  };
  const m = maintenanceStatus(readMaintenance(env.layout), now);
  const maintenance = { on: m.on, ...(m.window ? { window: m.window } : {}) };
  return { facts, obs: { problems: judgeFacts(facts, s, now), containers, telegram, maintenance } };
}

function readUpload(file: string): UploadRecord | null | { error: string } {
  try {
    const r = readJsonRecord<UploadRecord>(file);
    if (r && (typeof r.backupId !== 'string' || !Number.isFinite(Date.parse(r.backupCreatedAt)))) return { error: `${file} holds no backupId/backupCreatedAt` };
    return r;
  } catch (e) {
    return { error: (e as Error).message };
  }
}
