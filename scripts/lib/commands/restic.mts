// restic commands as data, like compose.mts: pure functions return argv arrays and environments.
// Secrets never go into argv: the repository password is read by restic from RESTIC_PASSWORD_FILE,
// backend credentials (AWS_*, RESTIC_REST_USERNAME/PASSWORD) travel in the environment, and the
// repository URL itself carries none (preflight refuses a URL with user:password in it).
// Nothing here runs anything: offsite/runner.mts does.

/** What restic needs to reach the repository; built from the env file by offsite/config.mts. */
export interface ResticTarget {
  /** any restic repository URL (sftp:, s3:, rest:, b2:, local path ...), without credentials */
  repository: string;
  /** RESTIC_PASSWORD_FILE */
  passwordFile: string;
  /** RESTIC_CACHE_DIR (kept under STATE_DIR so the cache is bounded and found again) */
  cacheDir: string;
  /** snapshot host name: the compose project, so a new machine finds the old machine's snapshots */
  host: string;
  /** backend credentials passed as environment variables (AWS_*, RESTIC_REST_*) */
  credentials: Record<string, string>;
  /** extra -o options, e.g. sftp.args=-i <key file> (paths only, never secrets) */
  options: string[];
}

/** Every snapshot this toolkit writes carries this tag; other snapshots in the repository are ignored. */
export const OFFSITE_TAG = 'lazyflow-backup';

/** restic's documented exit codes (restic >= 0.17); anything else is a failure too. */
export const RESTIC_EXIT = {
  ok: 0,
  fatal: 1,
  goRuntime: 2,
  incomplete: 3,
  noRepository: 10,
  locked: 11,
  wrongPassword: 12,
  interrupted: 130,
} as const;


/** Environment for restic: the caller's environment minus every RESTIC_* and AWS_* it may carry, plus ours. */
export function resticEnv(t: ResticTarget, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!/^(RESTIC_|AWS_|B2_|AZURE_|GOOGLE_|OS_|ST_)/.test(k)) env[k] = v;
  return {
    ...env,
    RESTIC_REPOSITORY: t.repository,
    RESTIC_PASSWORD_FILE: t.passwordFile,
    RESTIC_CACHE_DIR: t.cacheDir,
    // --time is given in UTC; restic reads it in the local zone
    TZ: 'UTC',
    ...t.credentials,
  };
}

const common = (t: ResticTarget) => t.options.flatMap((o) => ['-o', o]);

export function versionArgs(): string[] {
  return ['version'];
}

export function initArgs(t: ResticTarget): string[] {
  return ['init', ...common(t)];
}

/** `restic cat config`: cheap probe that the repository exists and the password opens it */
export function catConfigArgs(t: ResticTarget): string[] {
  return ['cat', 'config', '--no-lock', ...common(t)];
}

export interface SnapshotTags {
  backupId: string;
  reason: string;
  release: string | null;
  schema: number;
}

/** restic splits --tag values on commas; keep tags to a safe alphabet */
export function tagValue(v: string): string {
  return v.replace(/[^A-Za-z0-9._:+-]/g, '_');
}

export function snapshotTags(tags: SnapshotTags): string[] {
  return [OFFSITE_TAG, `id=${tagValue(tags.backupId)}`, `reason=${tagValue(tags.reason)}`, `release=${tagValue(tags.release ?? 'unknown')}`, `schema=${tags.schema}`];
}

/** restic's --time format, UTC (resticEnv sets TZ=UTC) */
export function resticTime(d: Date): string {
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}

/** one snapshot of one published backup directory (database, uploads, manifest) */
export function backupArgs(t: ResticTarget, o: { dir: string; tags: SnapshotTags; time: Date }): string[] {
  return [
    'backup', '--json', '--host', t.host,
    ...snapshotTags(o.tags).flatMap((x) => ['--tag', x]),
    '--time', resticTime(o.time),
    '--retry-lock', '2m',
    ...common(t),
    o.dir,
  ];
}

export function snapshotsArgs(t: ResticTarget): string[] {
  return ['snapshots', '--json', '--no-lock', '--host', t.host, '--tag', OFFSITE_TAG, ...common(t)];
}

/** forget exactly these snapshots (the decision is ours: retention.mts, as for local backups) */
export function forgetArgs(t: ResticTarget, snapshotIds: string[]): string[] {
  if (!snapshotIds.length) throw new Error('forgetArgs: no snapshot ids');
  return ['forget', '--json', '--retry-lock', '2m', ...common(t), ...snapshotIds];
}

export function pruneArgs(t: ResticTarget): string[] {
  return ['prune', '--retry-lock', '2m', ...common(t)];
}

/** check the repository structure and re-read a subset of the pack files (e.g. "5%", "1/7") */
export function checkArgs(t: ResticTarget, o: { readDataSubset?: string } = {}): string[] {
  return ['check', '--retry-lock', '2m', ...(o.readDataSubset ? ['--read-data-subset', o.readDataSubset] : []), ...common(t)];
}

/** restore the contents of `path` inside a snapshot into target (restic's snapshotID:subfolder) */
export function restoreArgs(t: ResticTarget, o: { snapshotId: string; path: string; target: string }): string[] {
  return ['restore', '--json', '--no-lock', ...common(t), `${o.snapshotId}:${o.path}`, '--target', o.target];
}

export function unlockArgs(t: ResticTarget): string[] {
  return ['unlock', ...common(t)];
}

// ---- parsing restic's JSON -------------------------------------------------------------------

export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  host: string;
  paths: string[];
  tags?: string[];
  summary?: { total_bytes_processed?: number; data_added?: number; total_files_processed?: number; data_added_packed?: number };
}

export interface OffsiteSnapshot {
  snapshotId: string;
  shortId: string;
  time: Date;
  backupId: string | null;
  reason: string | null;
  release: string | null;
  schema: number | null;
  path: string;
  bytes: number | null;
  dataAdded: number | null;
}

export function tagOf(tags: string[] | undefined, key: string): string | null {
  const t = (tags ?? []).find((x) => x.startsWith(`${key}=`));
  return t ? t.slice(key.length + 1) : null;
}

export function parseSnapshots(stdout: string): OffsiteSnapshot[] {
  const list = JSON.parse(stdout.trim() || '[]') as ResticSnapshot[];
  return list
    .map((s) => ({
      snapshotId: s.id,
      shortId: s.short_id ?? s.id.slice(0, 8),
      time: new Date(s.time),
      backupId: tagOf(s.tags, 'id'),
      reason: tagOf(s.tags, 'reason'),
      release: tagOf(s.tags, 'release'),
      schema: tagOf(s.tags, 'schema') === null ? null : Number(tagOf(s.tags, 'schema')),
      path: s.paths?.[0] ?? '',
      bytes: s.summary?.total_bytes_processed ?? null,
      dataAdded: s.summary?.data_added_packed ?? s.summary?.data_added ?? null,
    }))
    .sort((a, b) => b.time.getTime() - a.time.getTime() || (a.snapshotId < b.snapshotId ? 1 : -1));
}

export interface BackupSummary {
  snapshotId: string | null;
  dataAdded: number;
  dataAddedPacked: number;
  totalBytes: number;
  seconds: number;
}

/** the "summary" line of `restic backup --json` (one JSON object per line) */
export function parseBackupSummary(stdout: string): BackupSummary | null {
  for (const line of stdout.split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    try {
      const m = JSON.parse(line) as { message_type?: string; snapshot_id?: string; data_added?: number; data_added_packed?: number; total_bytes_processed?: number; total_duration?: number };
      if (m.message_type === 'summary') {
        return { snapshotId: m.snapshot_id ?? null, dataAdded: m.data_added ?? 0, dataAddedPacked: m.data_added_packed ?? m.data_added ?? 0, totalBytes: m.total_bytes_processed ?? 0, seconds: m.total_duration ?? 0 };
      }
    } catch {
      /* a partial line */
    }
  }
  return null;
}

/** "restic 0.19.1 compiled with go1.26.4 on linux/amd64" -> [0, 19, 1] */
export function parseResticVersion(stdout: string): number[] | null {
  const m = /restic (\d+)\.(\d+)\.(\d+)/.exec(stdout);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}
