// The status screen's data: what runs, the last operations, backups, timers, open alerts, disk and
// certificate, gathered from the existing readers. Every section is independent: one that cannot
// be read says why, the others are still shown.
import fs from 'node:fs';
import type { OpsEnv } from '../config/env.mts';
import { currentRelease, readJournal, releaseRows } from '../release/journal.mts';
import { listBackups } from '../backup/manifest.mts';
import { liveApp } from '../docker/app-container.mts';
import { tlsProbe } from '../checks/http.mts';
import { smokeTarget } from '../checks/smoke.mts';
import { DAY_MS } from '../checks/evaluate.mts';
import { readRestoreJournal } from '../restore/restore.mts';
import { formatAge } from '../cli/log.mts';
import { errorMessage } from '../cli/errors.mts';
import { openAlerts } from './decide.mts';
import { readWatchState, watchStateFile } from './store.mts';
import { scheduleContext, status as scheduleStatus } from '../schedules/install.mts';
import { netVerdict, schedulePaths, type NetVerdict } from '../schedules/net.mts';
import { readJsonRecord, type DrillRecord, type UploadRecord } from '../host/records.mts';
import type { CheckRecord } from '../offsite/offsite.mts';
import { decideShape, shapeOfRelease, shapeSummary, type BotShape } from '../config/shape.mts';

/** offsite as status shows it, from the records under STATE_DIR/offsite/ (restic is never called) */
export interface OffsiteStatus {
  configured: boolean;
  newest: { backupId: string; backupCreatedAt: string; age: string; uploadedAt: string; uploadedAge: string; snapshotId: string | null } | null;
  lastCheck: { at: string; age: string; ok: boolean; detail: string } | null;
  /** what to do next, or why a record could not be read ('' when all is well) */
  note: string;
}

export type DrillStatus = { backupId: string; from: string; at: string; age: string; ok: boolean; reason: string } | null;

type Rec<T> = T | null | { error: string };
const isErr = <T,>(r: Rec<T>): r is { error: string } => Boolean(r && typeof r === 'object' && 'error' in r);

/** pure: the offsite section from OFFSITE_REPOSITORY and the two records, ages against `now` */
export function offsiteStatus(configured: boolean, upload: Rec<UploadRecord>, check: Rec<CheckRecord>, now: Date): OffsiteStatus {
  const ago = (iso: string) => formatAge(now.getTime() - Date.parse(iso));
  const notes: string[] = [];
  if (!configured) notes.push('not configured: set OFFSITE_REPOSITORY (RUNBOOK: offsite backups)');
  let newest: OffsiteStatus['newest'] = null;
  if (isErr(upload)) notes.push(`upload record unreadable: ${upload.error}`);
  else if (upload) newest = { backupId: upload.backupId, backupCreatedAt: upload.backupCreatedAt, age: ago(upload.backupCreatedAt), uploadedAt: upload.at, uploadedAge: ago(upload.at), snapshotId: upload.snapshotId };
  else if (configured) notes.push('nothing uploaded yet: node scripts/offsite.mts --config .env.prod --push');
  let lastCheck: OffsiteStatus['lastCheck'] = null;
  if (isErr(check)) notes.push(`check record unreadable: ${check.error}`);
  else if (check) lastCheck = { at: check.at, age: ago(check.at), ok: check.ok, detail: check.detail };
  else if (configured) notes.push('never checked: node scripts/offsite.mts --config .env.prod --check');
  return { configured, newest, lastCheck, note: notes.join('; ') };
}

/** pure: the last drill, its age against `now` */
export function drillStatus(rec: Rec<DrillRecord>, now: Date): DrillStatus | { error: string } {
  if (isErr(rec)) return rec;
  if (!rec) return null;
  return { backupId: rec.backupId, from: rec.from, at: rec.at, age: formatAge(now.getTime() - Date.parse(rec.at)), ok: rec.ok, reason: rec.reason ?? '' };
}

/** pure: the status screen's offsite lines (no colour) */
export function offsiteLines(o: OffsiteStatus): string[] {
  const out: string[] = [];
  if (o.configured || o.newest || o.lastCheck) {
    out.push(`offsite: ${o.configured ? 'configured' : 'NOT configured'}`);
    out.push(o.newest ? `  newest copy: ${o.newest.backupId} (backup ${o.newest.age} old, uploaded ${o.newest.uploadedAge} ago${o.newest.snapshotId ? `, snapshot ${o.newest.snapshotId.slice(0, 8)}` : ''})` : '  newest copy: none recorded');
    out.push(o.lastCheck ? `  last check: ${o.lastCheck.ok ? 'ok' : 'FAILED'} ${o.lastCheck.age} ago${o.lastCheck.ok ? '' : `: ${o.lastCheck.detail.split('\n')[0]}`}` : '  last check: never');
  } else out.push('offsite: not configured');
  if (o.note) out.push(`  ${o.note}`);
  return out;
}

/** pure: the status screen's drill line (no colour) */
export function drillLine(d: DrillStatus | { error: string }): string {
  if (d && 'error' in d) return `last drill: record unreadable: ${d.error}`;
  if (!d) return 'last drill: never: node scripts/restore.mts --config .env.prod --drill';
  return `last drill: ${d.ok ? 'passed' : 'FAILED'} on ${d.backupId} (${d.from}) ${d.age} ago${d.ok ? '' : `: ${d.reason}`}`;
}

function readRec<T>(file: string): Rec<T> {
  try {
    return readJsonRecord<T>(file);
  } catch (e) {
    return { error: errorMessage(e) };
  }
}

export interface StatusReport {
  at: string;
  domain: string;
  running: { release: string | null; appTag: string | null; since: string | null; image: string | null; status: string; health: string | null } | { error: string };
  /** the bot's shape (config/shape.mts: the env file, else what the live release was deployed as) and what the toolkit does for it */
  shape: { shape: BotShape; why: string; does: string } | { error: string };
  operations: { id: string; kind: string; result: string; appTag: string; started: string; age: string; duration: string; reason: string }[];
  restore: { inProgress: boolean; backupId?: string; phase?: string; startedAt?: string };
  backups: { local: { id: string; createdAt: string; age: string; sizeBytes: number; verified: boolean; reason: string }[]; offsite: OffsiteStatus };
  drill: DrillStatus | { error: string };
  timers: { installed: boolean; units: { unit: string; next: string; last: string; result: string }[]; note: string };
  /** recovery at boot and every minute (schedules/net.mts) */
  safetyNet: NetVerdict | { error: string };
  alerts: { problem: string; since: string; detail: string }[];
  watchLastRun: string | null;
  disk: { path: string; freeBytes: number; totalBytes: number } | { error: string };
  certificate: { daysLeft: number; validTo: string; issuer?: string } | { error: string };
}

/** this project's schedules (systemd timers or the cron file), as schedules.mts --status reads them */
async function timers(env: OpsEnv): Promise<StatusReport['timers']> {
  const s = await scheduleStatus(scheduleContext(env), schedulePaths(env.values), `node scripts/schedules.mts --config ${env.file}`);
  if (s.mode === 'none') return { installed: false, units: [], note: `not installed: ${s.next?.replace(/ +# .*$/, '')}` };
  const units = s.jobs.map((j) => ({
    unit: s.mode === 'systemd' ? `${j.name}.timer` : `${j.id} (cron)`,
    next: j.timer?.nextElapse ?? (j.installed ? j.when : ''),
    last: j.lastRun?.finishedAt ?? j.timer?.lastTrigger ?? j.log?.modifiedAt ?? '',
    result: !j.installed ? 'not installed' : j.lastRun ? (j.lastRun.running ? 'running' : j.lastRun.ok ? 'success' : `FAILED (${j.lastRun.result})`) : '',
  }));
  return { installed: true, units, note: s.next ?? '' };
}

export async function gatherStatus(env: OpsEnv, o: { ca?: string; connect?: string; timeoutMs?: number; now?: Date } = {}): Promise<StatusReport> {
  const now = o.now ?? new Date();
  const { releases } = readJournal(env.layout.releases);
  const cur = currentRelease(releases);
  const [app, tls, tm, safetyNet] = await Promise.all([
    liveApp(env).catch((e: unknown) => ({ error: errorMessage(e) })),
    smokeTarget(env, { ca: o.ca, connect: o.connect })
      .then((t) => tlsProbe(t, o.timeoutMs ?? 10_000))
      .catch((e: unknown) => ({ authorized: false, error: errorMessage(e) }) as Awaited<ReturnType<typeof tlsProbe>>),
    timers(env).catch((e: unknown) => ({ installed: false, units: [], note: `schedules unreadable: ${errorMessage(e)}` })),
    netVerdict(env).catch((e: unknown) => ({ error: errorMessage(e) })),
  ]);
  let running: StatusReport['running'];
  if (app && 'error' in app) running = { error: app.error };
  else if (!app) running = { release: cur?.id ?? null, appTag: cur?.appTag ?? null, since: null, image: null, status: 'no app container', health: null };
  else running = { release: cur && cur.appTag === app.tag ? cur.id : null, appTag: app.tag, since: app.startedAt, image: app.imageRef, status: app.status, health: app.health ?? null };

  let restore: StatusReport['restore'] = { inProgress: false };
  try {
    const j = readRestoreJournal(env.layout);
    if (j) restore = { inProgress: true, backupId: j.backupId, phase: j.phase, startedAt: j.startedAt };
  } catch (e) {
    restore = { inProgress: true, phase: `unreadable: ${errorMessage(e)}` };
  }
  const local = listBackups(env.layout).backups.map((b) => ({
    id: b.id,
    createdAt: b.createdAt.toISOString(),
    age: formatAge(now.getTime() - b.createdAt.getTime()),
    sizeBytes: b.sizeBytes,
    verified: b.verified,
    reason: String((b.manifest as unknown as { reason?: string }).reason ?? ''),
  }));
  const offsite = offsiteStatus(Boolean((env.values.OFFSITE_REPOSITORY ?? '').trim()), readRec<UploadRecord>(env.layout.offsiteLastUpload), readRec<CheckRecord>(env.layout.offsiteLastCheck), now);
  const drill = drillStatus(readRec<DrillRecord>(env.layout.lastDrill), now);
  const { state } = (() => {
    try {
      return readWatchStateNoMove(watchStateFile(env.stateDir));
    } catch {
      return { state: undefined };
    }
  })();
  let disk: StatusReport['disk'];
  try {
    const st = fs.statfsSync(env.layout.root);
    disk = { path: env.layout.root, freeBytes: Number(st.bavail) * Number(st.bsize), totalBytes: Number(st.blocks) * Number(st.bsize) };
  } catch (e) {
    disk = { error: errorMessage(e) };
  }
  const exp = tls.validTo ? Date.parse(tls.validTo) : NaN;
  const certificate: StatusReport['certificate'] = tls.error || !Number.isFinite(exp)
    ? { error: tls.error ?? `unreadable expiry ${tls.validTo}` }
    : { daysLeft: Math.round(((exp - now.getTime()) / DAY_MS) * 10) / 10, validTo: new Date(exp).toISOString(), issuer: tls.issuer };
  const sd = decideShape({ values: env.values, recorded: shapeOfRelease(releases, running && !('error' in running) ? running.appTag : cur?.appTag) });
  const shape: StatusReport['shape'] = sd.ok ? { shape: sd.shape, why: sd.why, does: shapeSummary(sd.shape) } : { error: sd.error };
  return {
    at: now.toISOString(),
    domain: env.domain,
    running,
    shape,
    operations: releaseRows(releases, now).slice(0, 10).map((r) => ({ id: r.id, kind: r.kind, result: r.result, appTag: r.appTag, started: r.started, age: r.age, duration: r.duration, reason: r.reason })),
    restore,
    backups: { local, offsite },
    drill,
    timers: tm,
    safetyNet,
    alerts: openAlerts(state),
    watchLastRun: state?.lastRunAt ?? null,
    disk,
    certificate,
  };
}

/** status is read-only: an unreadable watch state is reported, not moved aside (the watch does that) */
function readWatchStateNoMove(file: string) {
  if (!fs.existsSync(file)) return { state: undefined };
  const text = fs.readFileSync(file, 'utf8');
  JSON.parse(text);
  return readWatchState(file);
}
