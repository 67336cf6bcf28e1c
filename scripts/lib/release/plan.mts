// Release planning, pure: phases of a rollout, the app tag of a build, the auto-rollback decision and
// which release images to prune. Commands are data (argument arrays); scripts run them with zx.
import type { OptionSpec } from '../cli/args.mts';
import type { Release } from './journal.mts';

export const ROLLOUT_PHASES = [
  'preflight', 'lock', 'build', 'contract', 'backup', 'swap', 'health', 'telegram', 'smoke', 'record', 'notify',
] as const;
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number];

export const ROLLBACK_PHASES = [
  'preflight', 'lock', 'backup', 'restore', 'swap', 'health', 'telegram', 'smoke', 'record', 'notify',
] as const;

/** Phases whose failure triggers the automatic rollback (the live app was already touched). */
export const GATED_PHASES: ReadonlySet<string> = new Set(['swap', 'health', 'telegram', 'smoke']);

export interface GitState {
  sha: string; // full sha of HEAD
  dirty: boolean; // uncommitted changes in tracked files (or untracked files that are not ignored)
}

/** `git status --porcelain` output -> dirty? (ignored files never appear in porcelain output) */
export function isDirtyPorcelain(porcelain: string): boolean {
  return porcelain.split('\n').some((l) => l.trim().length > 0);
}

/**
 * The image tag of a build: the first 12 chars of the git sha; a dirty tree (only with --allow-dirty)
 * gets a visible marker and a timestamp, so two dirty builds never share a tag.
 */
export function appTagFor(git: GitState, now: Date): string {
  const short = git.sha.slice(0, 12);
  if (!git.dirty) return short;
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '').replace('T', '');
  return `${short}-dirty-${ts}`;
}

export interface BuildPlan {
  image: string;
  appTag: string;
  ref: string;
  argv: string[]; // docker ...
}

/** `docker build` for the app image, tagged with the release tag; APP_VERSION = tag so /health reports it. */
export function buildArgs(o: {
  contextDir: string;
  dockerfile?: string;
  image: string;
  appTag: string;
  buildArgs?: Record<string, string | undefined>;
  labels?: Record<string, string>;
  /** the Dockerfile stage to build (the proxy image of a bot without a Mini App: PROXY_TARGET_NO_FRONTEND) */
  target?: string;
}): BuildPlan {
  const ref = `${o.image}:${o.appTag}`;
  const argv = ['build', '--tag', ref, '--file', o.dockerfile ?? `${o.contextDir.replace(/\/$/, '')}/Dockerfile`];
  const args: Record<string, string | undefined> = { APP_VERSION: o.appTag, ...(o.buildArgs ?? {}) };
  for (const [k, v] of Object.entries(args)) if (v !== undefined && v !== '') argv.push('--build-arg', `${k}=${v}`);
  for (const [k, v] of Object.entries(o.labels ?? {})) argv.push('--label', `${k}=${v}`);
  if (o.target) argv.push('--target', o.target);
  argv.push(o.contextDir);
  return { image: o.image, appTag: o.appTag, ref, argv };
}

export interface RollbackDecision {
  /** app tag to go back to, or null when there is no earlier release (first deploy) */
  toAppTag: string | null;
  toRelease: string | null;
  /** restore the pre-deploy backup? only when the failed release moved the schema */
  restoreDb: boolean;
  backupId: string | null;
  why: string[];
}

/**
 * What to do after a failed gate. Old code cannot run on a newer schema, so when PRAGMA user_version
 * moved (the new release migrated the database), the pre-deploy backup is restored; otherwise the data
 * is kept (rows written during the attempt survive).
 */
export function decideRollback(o: {
  previous: Pick<Release, 'id' | 'appTag'> | undefined | null;
  userVersionBefore: number | null | undefined;
  userVersionAfter: number | null | undefined;
  backupId: string | null | undefined;
}): RollbackDecision {
  const why: string[] = [];
  const before = o.userVersionBefore ?? null;
  const after = o.userVersionAfter ?? null;
  let restoreDb = false;
  if (before === null) {
    why.push('no database before this release: nothing to restore, data kept');
  } else if (after === null) {
    why.push(`could not read user_version after the attempt (before: ${before}); restoring the pre-deploy backup to be safe`);
    restoreDb = true;
  } else if (after !== before) {
    why.push(`schema moved: user_version ${before} -> ${after}; old code cannot run on the new schema, so the pre-deploy backup is restored`);
    restoreDb = true;
  } else {
    why.push(`schema unchanged (user_version ${before}): data kept, no restore`);
  }
  if (restoreDb && !o.backupId) {
    why.push('no pre-deploy backup id recorded: CANNOT restore; the database stays as the failed release left it');
    restoreDb = false;
  }
  const toAppTag = o.previous?.appTag ?? null;
  if (!toAppTag) why.push('no earlier successful release: the failed app container is stopped, nothing to go back to');
  else why.push(`going back to release ${o.previous!.id} (image tag ${toAppTag})`);
  return { toAppTag, toRelease: o.previous?.id ?? null, restoreDb, backupId: o.backupId ?? null, why };
}

/**
 * Image tags to delete: only tags this toolkit created (named in the journal); keep the `keep` newest
 * distinct tags of successful releases plus anything in `protect` (live tag, the one just built,
 * rollback targets). Tags not in the journal (e.g. `local`, hand-built) are never touched.
 */
export function imagesToPrune(o: { localTags: string[]; releases: Release[]; keep: number; protect?: string[] }): string[] {
  const journalTags = new Set(o.releases.map((r) => r.appTag).filter(Boolean) as string[]);
  const kept = new Set(o.protect ?? []);
  const newest: string[] = [];
  for (const r of [...o.releases].reverse()) {
    if (newest.length >= Math.max(1, o.keep)) break;
    if (r.result === 'ok' && r.appTag && !newest.includes(r.appTag)) newest.push(r.appTag);
  }
  for (const t of newest) kept.add(t);
  return o.localTags.filter((t) => journalTags.has(t) && !kept.has(t));
}

export interface PlanStep {
  phase: string;
  what: string;
  argv?: string[]; // a command, when the step is one
}

/** Human-readable plan for --dry-run. */
export function rolloutPlan(o: {
  appTag: string;
  image: string;
  dirty: boolean;
  previous: Pick<Release, 'id' | 'appTag'> | undefined;
  build: BuildPlan;
  composeUp: string[];
  keepImages: number;
  telegram: boolean;
  notify: boolean;
  skipBackup?: boolean;
  skipSmoke?: boolean;
  skipContract?: boolean;
  /** the safety net as it is now (schedules/net.mts): the rollout installs it when it is not in place */
  safetyNet?: { inPlace: boolean; state: string; detail: string } | null;
  /** bot shape polling: the app alone, no Caddy (config/shape.mts) */
  polling?: boolean;
}): PlanStep[] {
  const steps: PlanStep[] = [
    { phase: 'preflight', what: `check engine, Compose v2, Node, disk, env file (mode, keys, secrets), compose config${o.polling ? '' : ', Caddyfile'}` },
    { phase: 'lock', what: 'take STATE_DIR/ops.lock (a stale lock of a dead process is taken over)' },
    ...(o.safetyNet
      ? [{ phase: 'safety net', what: o.safetyNet.inPlace || o.safetyNet.state === 'off' ? o.safetyNet.detail : `install recovery (scripts/recover.mts at boot and every minute; systemd timer, else the cron file) next to the installed schedules; now: ${o.safetyNet.detail}` }]
      : []),
    { phase: 'build', what: `build ${o.build.ref}${o.dirty ? ' (DIRTY working tree, --allow-dirty)' : ''}`, argv: ['docker', ...o.build.argv] },
    {
      phase: 'contract',
      what: o.skipContract
        ? 'SKIPPED (--skip-contract): the image is not checked against the app contract'
        : `run ${o.image}:${o.appTag} in the contract checker's sandbox (no ports, throwaway STATE_DIR) against the required tier; refuse it (nothing live changed) if an item fails. A pass is cached per image id in STATE_DIR/contract-cache.json`,
    },
    {
      phase: 'backup',
      what: o.skipBackup
        ? 'SKIPPED (--skip-backup): no pre-deploy backup, a schema-changing failure could not be undone'
        : `${o.polling ? 'stop the old poller first (no update is confirmed after the backup; they wait in Telegram\'s queue until the release is judged), then the ' : ''}pre-deploy backup of the database and uploads (reason pre-deploy)`,
    },
    {
      phase: 'swap',
      what: o.polling
        ? `APP_TAG=${o.appTag}, bot shape polling (no Caddy): stop the old poller gracefully first${o.skipBackup ? '' : ' (already stopped for the backup)'}, then start ${o.image}:${o.appTag} (two pollers conflict); updates wait in Telegram's queue meanwhile. Then wait for its healthcheck`
        : `APP_TAG=${o.appTag}: compose creates the new container, stops the old one gracefully (in-flight requests finish, Caddy holds new ones), removes it, then starts ${o.image}:${o.appTag}; never two app containers running. Then wait for its healthcheck`,
      argv: ['docker', ...o.composeUp],
    },
    { phase: 'health', what: o.polling ? `the app container runs ${o.appTag} and its own healthcheck reports healthy` : `/health through Caddy reports version ${o.appTag}` },
    { phase: 'telegram', what: !o.telegram ? 'skipped: local mode (no BOT_TOKEN)' : o.polling ? 'getWebhookInfo: no webhook set, pending_update_count drains or moves' : 'getWebhookInfo: url, no new error, pending_update_count drains' },
    { phase: 'smoke', what: o.skipSmoke ? 'SKIPPED (--skip-smoke)' : 'run every smoke check; any fail -> automatic rollback' },
    { phase: 'record', what: `append the release to STATE_DIR/releases.jsonl; prune release images beyond the newest ${o.keepImages}` },
    { phase: 'notify', what: o.notify ? 'notify the alert channels (ADMIN_CHAT_ID, ALERT_WEBHOOK_URL): one message, ok or failed' : 'skipped: --no-notify, or no alert channel (ADMIN_CHAT_ID with a bot token, ALERT_WEBHOOK_URL)' },
  ];
  steps.push({
    phase: 'on failure',
    what: o.previous
      ? `roll back to ${o.previous.id} (${o.image}:${o.previous.appTag}); restore the pre-deploy backup only if user_version moved`
      : 'no earlier release: stop the failed app and report',
  });
  return steps;
}

/** CLI options of the gates that rollout and rollback both run after a swap. */
export const GATE_OPTIONS: OptionSpec[] = [
  { name: 'health-timeout', type: 'number', arg: '<s>', default: 90, describe: 'how long the new container may take to become healthy' },
  { name: 'telegram-timeout', type: 'number', arg: '<s>', default: 60, describe: 'how long the webhook may take to register and drain' },
  { name: 'pending-max', type: 'number', default: 10, describe: 'Telegram gate: pending_update_count drains below this, or the queue must move (an update handled)' },
  { name: 'wait-lock', type: 'number', arg: '<s>', default: 0, describe: 'wait this long for another operation (backup, restore) to finish' },
  { name: 'skip-smoke', type: 'boolean', describe: 'skip the smoke gate (health and Telegram gates still apply)' },
  { name: 'ca', type: 'string', arg: '<pem>', describe: 'root that verifies the site certificate (private CA) for the smoke gate' },
  { name: 'telegram-api-root', type: 'string', arg: '<url>', describe: 'Bot API root as reachable from this host (default TELEGRAM_API_ROOT)' },
  { name: 'notify', type: 'boolean', default: true, describe: 'notify the alert channels (ADMIN_CHAT_ID, ALERT_WEBHOOK_URL) of the outcome (--no-notify: do not)' },
];
