// Restore drill: prove that a backup really boots, without touching production.
// The backup is verified and staged into a scratch directory (STATE_DIR/.drill-<pid>-<rand>), a
// throwaway app container boots on it on a private network (docker network create --internal, no
// published ports) with production's settings (the app's own keys from the env file, as the contract
// sandbox passes them: contract/sandbox-env.mts) but placeholder secrets, a BOT_TOKEN that is no bot's
// and no route to Telegram (the real token would let it move the live webhook), and the drill checks /health, integrity_check and row
// counts. It holds the ops lock throughout, so retention cannot remove the backup under it. Uploads
// are hard-linked from the backup, or copied when backups/ is on another filesystem. Container, network and scratch directory are removed at the end, also on failure,
// Ctrl-C or SIGTERM; leftovers of a drill that was killed -9 are removed by the next drill.
import { spawnSync } from 'node:child_process';
import { docker, dockerSync } from '../docker/run.mts';
import { containerLogsArgs, networkRmArgs, removeContainersArgs, stopContainersArgs } from '../commands/docker.mts';
import {
  containerByNameArgs, drillContainersArgs, drillLabels, drillNetworkCreateArgs, drillNetworksArgs, drillRunArgs, healthProbeArgs, networkByNameArgs,
  portsAndNetworksArgs, stateArgs,
} from '../commands/drill.mts';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StepError, errorMessage } from '../cli/errors.mts';
import { formatDuration, type Logger } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import { appContainers, imageExists } from '../docker/app-container.mts';
import { acquireLock, isProcessAlive } from '../host/lock.mts';
import { deadline } from '../host/deadline.mts';
import { APP_GID, APP_UID, isRoot } from '../host/fsutil.mts';
import { verifyDatabase } from '../backup/sqlite-snapshot.mts';
import { openAsApp } from '../host/sqlite-read.mts';
import { resolveBackup, stageBackup } from './stage.mts';
import type { BackupEntry } from '../backup/manifest.mts';
import { readJsonRecord, writeJsonAtomic, type DrillRecord } from '../host/records.mts';
import { envFileText, sandboxEnv } from '../contract/sandbox-env.mts';
import { pollingBot } from '../config/shape.mts';
import { startTelegramStub } from '../contract/telegram-stub.mts';
import { telegramStubRunArgs } from '../commands/contract.mts';
import { writeFileSync } from 'node:fs';

export interface DrillOptions {
  ctx: OpsEnv;
  from: string;
  log: Logger;
  /** image to boot; default: the running app container's image, else APP_IMAGE:APP_TAG */
  image?: string;
  healthTimeoutMs?: number;
  /** wait this long for the ops lock (a running backup, retention or rollout) */
  waitLockMs?: number;
  lockHeld?: boolean;
  /** offsite (issue 9): a backup the caller fetched (offsite:...) */
  backup?: BackupEntry;
}

export interface DrillCheck {
  name: string;
  status: 'pass' | 'fail';
  detail: string;
}

export interface DrillResult {
  backupId: string;
  image: string;
  checks: DrillCheck[];
  failed: boolean;
  ms: number;
  resources: { container: string; network: string; scratch: string };
}

const DRILL_PREFIX = '.drill-';

async function dockerq(args: string[], timeoutMs = 60_000) {
  return docker(args, { nothrow: true, timeoutMs });
}

/** the image the running app container uses (its image id), else APP_IMAGE:APP_TAG if present */
export async function drillImage(ctx: OpsEnv): Promise<string> {
  const list = await appContainers(ctx).catch(() => []);
  const app = list.find((x) => x.State.Running) ?? list[0];
  if (app?.Image) return app.Image;
  const fallback = `${ctx.appImage}:${ctx.appTag}`;
  if (await imageExists(fallback)) return fallback;
  throw new StepError(`no app image to boot the drill with: no app container in project ${ctx.project}, and no image ${fallback}`, {
    step: 'drill',
    hint: 'deploy first (rollout.mts), or pass --image <image>',
  });
}

/** remove containers, networks and scratch dirs of earlier drills of this project whose process is gone */
export async function removeDrillLeftovers(ctx: OpsEnv, log: Logger): Promise<number> {
  let removed = 0;
  const dead = (pidLabel: string | undefined) => !pidLabel || !isProcessAlive(Number(pidLabel));
  const cs = await dockerq(drillContainersArgs(ctx.project));
  for (const line of cs.stdout.split('\n').filter(Boolean)) {
    const [id, pid] = line.split('\t');
    if (!dead(pid)) continue;
    await dockerq(removeContainersArgs([id], { volumes: true }));
    removed++;
  }
  const ns = await dockerq(drillNetworksArgs(ctx.project));
  for (const line of ns.stdout.split('\n').filter(Boolean)) {
    const [id, pid] = line.split('\t');
    if (!dead(pid)) continue;
    await dockerq(networkRmArgs(id));
    removed++;
  }
  if (existsSync(ctx.layout.root)) {
    for (const name of readdirSync(ctx.layout.root)) {
      if (!name.startsWith(DRILL_PREFIX)) continue;
      const pid = Number(name.slice(DRILL_PREFIX.length).split('-')[0]);
      if (isProcessAlive(pid)) continue;
      rmSync(join(ctx.layout.root, name), { recursive: true, force: true });
      removed++;
    }
  }
  if (removed) log.warn(`removed ${removed} leftover(s) of an earlier drill that was killed`);
  return removed;
}

export async function runDrill(opts: DrillOptions): Promise<DrillResult> {
  // the ops lock: retention cannot delete the backup being drilled, nor a restore swap it
  const lock = opts.lockHeld ? undefined : await acquireLock(opts.ctx.layout, { operation: `restore --drill ${opts.from}`, waitMs: opts.waitLockMs ?? 0, log: opts.log });
  const t0 = performance.now();
  const from: DrillRecord['from'] = opts.backup ? 'offsite' : 'local';
  try {
    const r = await drill(opts);
    recordDrill(opts.ctx, drillRecord({ backupId: r.backupId, from, ms: r.ms, checks: r.checks }), opts.log);
    return r;
  } catch (err) {
    recordDrill(opts.ctx, drillRecord({ backupId: opts.backup?.id ?? opts.from, from, ms: performance.now() - t0, error: errorMessage(err) }), opts.log);
    throw err;
  } finally {
    lock?.release();
  }
}

/** what STATE_DIR/drill/last-drill.json says about one drill (pure) */
export function drillRecord(x: { backupId: string; from: DrillRecord['from']; ms: number; checks?: DrillCheck[]; error?: string; at?: Date }): DrillRecord {
  const failed = x.checks?.find((c) => c.status === 'fail');
  const ok = !x.error && !failed;
  const rec: DrillRecord = { backupId: x.backupId, at: (x.at ?? new Date()).toISOString(), ok, from: x.from, ms: Math.round(x.ms) };
  if (!ok) rec.reason = (x.error ?? `${failed!.name}: ${failed!.detail}`).split('\n')[0].slice(0, 300);
  return rec;
}

export function readLastDrill(ctx: OpsEnv): DrillRecord | null {
  return readJsonRecord<DrillRecord>(ctx.layout.lastDrill);
}

/** a record that cannot be written is a warning: the drill's own result stands */
export function recordDrill(ctx: OpsEnv, rec: DrillRecord, log: Logger): void {
  try {
    writeJsonAtomic(ctx.layout.lastDrill, rec);
  } catch (err) {
    log.warn(`drill: could not record its result in ${ctx.layout.lastDrill}: ${errorMessage(err)}`);
  }
}

async function drill(opts: DrillOptions): Promise<DrillResult> {
  const { ctx, log } = opts;
  const t0 = performance.now();
  await removeDrillLeftovers(ctx, log);
  const b = opts.backup ?? resolveBackup(ctx.layout, opts.from);
  const suffix = randomBytes(4).toString('hex');
  const name = `${ctx.project}-drill-${suffix}`;
  const network = `${ctx.project}-drill-${suffix}`;
  const scratch = join(ctx.layout.root, `${DRILL_PREFIX}${process.pid}-${suffix}`);
  const checks: DrillCheck[] = [];
  const check = (n: string, ok: boolean, detail: string) => {
    checks.push({ name: n, status: ok ? 'pass' : 'fail', detail });
    (ok ? log.ok : log.error)(`${n}: ${detail}`);
    return ok;
  };
  let createdContainer = false;
  let createdNetwork = false;
  // a polling bot's drill: the sandbox's stub Bot API answers its getMe / getUpdates (contract/telegram-stub.mts)
  const stub = pollingBot(ctx.values) ? `${name}-telegram` : null;
  let createdStub = false;
  const ours = () => [...(createdContainer ? [name] : []), ...(createdStub && stub ? [stub] : [])];
  let tornDown = false;
  // synchronous teardown, so it also runs from process.on('exit') after Ctrl-C / SIGTERM
  const teardownSync = () => {
    if (tornDown) return;
    tornDown = true;
    if (ours().length) dockerSync(removeContainersArgs(ours(), { volumes: true }));
    if (createdNetwork) dockerSync(networkRmArgs(network));
    rmSync(scratch, { recursive: true, force: true });
  };
  process.on('exit', teardownSync);
  let image = '';
  try {
    image = opts.image ?? (await drillImage(ctx));
    log.info(`drill: backup ${b.id} on image ${image.slice(0, 24)} in ${scratch}`);
    mkdirSync(scratch, { mode: 0o700 });
    if (isRoot()) spawnSync('chmod', ['0711', scratch]); // the app user must traverse it
    let staged;
    try {
      staged = await stageBackup(b, scratch, { log, linkUploads: true, uid: APP_UID, gid: APP_GID, dirMode: 0o750 });
    } catch (err) {
      check('backup verifies', false, errorMessage(err));
      throw err;
    }
    check('backup verifies', true, `sha256 of every file, integrity_check ok, row counts equal the manifest`);

    let r = await dockerq(drillNetworkCreateArgs(network, ctx.project, process.pid));
    if (r.exitCode !== 0) throw new StepError(`docker network create failed: ${r.stderr.trim()}`, { step: 'drill' });
    createdNetwork = true;
    // production's settings with placeholder secrets, in a file (values never on argv); outside data/ and uploads/
    const envFile = join(scratch, 'app.env');
    writeFileSync(envFile, envFileText(sandboxEnv(ctx.values)), { mode: 0o600, flag: 'wx' });
    if (stub) {
      // from the backup's own image: the drill already needs bun in it (its /health probe below)
      createdStub = true;
      await startTelegramStub(telegramStubRunArgs({ name: stub, network, probeImage: image, labels: drillLabels(ctx.project, process.pid) }), stub);
    }
    r = await dockerq(drillRunArgs({ name, project: ctx.project, pid: process.pid, network, envFile, dataDir: join(scratch, 'data'), uploadsDir: join(scratch, 'uploads'), image }));
    if (r.exitCode !== 0) throw new StepError(`docker run of the drill container failed: ${r.stderr.trim()}`, { step: 'drill' });
    createdContainer = true;

    // health: the image's HEALTHCHECK, then /health itself from inside the container
    const until = deadline(opts.healthTimeoutMs ?? 90_000);
    let state = '';
    for (;;) {
      const s = await dockerq(stateArgs(name));
      state = s.stdout.trim();
      if (state === 'running healthy' || state === 'running') {
        if (state === 'running healthy') break;
        const probe = await dockerq(healthProbeArgs(name));
        if (probe.exitCode === 0) break;
      }
      if (/^(exited|dead)/.test(state) || until.passed()) {
        const logs = await dockerq(containerLogsArgs(name, 30));
        check('app boots and is healthy', false, `${state || 'unknown'} after ${formatDuration(performance.now() - t0)}:\n${(logs.stdout + logs.stderr).trim()}`);
        throw new StepError(`the drill app did not become healthy on backup ${b.id} (${state})`, { step: 'drill', hint: 'see the container log above; the backup may need another app release (schema)' });
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    const h = await dockerq(healthProbeArgs(name, { print: true }));
    const [status, ...body] = h.stdout.trim().split(' ');
    let health: { status?: string; db?: string; version?: string } = {};
    try {
      health = JSON.parse(body.join(' '));
    } catch {
      /* reported below */
    }
    // the contract asks /health for 200 and a usable database; a `db` field is the reference app's, judged where present
    check('app boots and is healthy', status === '200' && health.status === 'ok' && (health.db === undefined || health.db === 'ok'), `GET /health ${status} status=${health.status} db=${health.db} version=${health.version}`);
    const net = await dockerq(portsAndNetworksArgs(name));
    check('isolated', !/HostPort/.test(net.stdout) && net.stdout.trim().endsWith(network), `no published ports, only network ${network} (internal)`);

    // stop gracefully (the app checkpoints), then look at the database it ran on
    await dockerq(stopContainersArgs([name], { timeoutS: 15 }));
    // the drill's app (the backup's own image) had that directory: read it with the app's uid only
    const v = openAsApp(join(scratch, 'data', 'lazyflow.db'), () => verifyDatabase(join(scratch, 'data', 'lazyflow.db')));
    check('integrity_check after boot', v.ok, v.ok ? `ok, schema ${staged.userVersion} -> ${v.userVersion}` : v.messages.slice(0, 3).join('; '));
    const core = ['users', 'tasks', 'media'];
    const diffs: string[] = [];
    for (const [table, n] of Object.entries(b.manifest.database.rowCounts)) {
      const now = v.rowCounts[table];
      if (core.includes(table) ? now !== n : now === undefined || now < n) diffs.push(`${table} ${n} -> ${now}`);
    }
    check('row counts', diffs.length === 0, diffs.length ? diffs.join(', ') : core.filter((t) => t in b.manifest.database.rowCounts).map((t) => `${t} ${b.manifest.database.rowCounts[t]}`).join(', ') + ' (as in the manifest)');
  } finally {
    teardownSync();
    process.off('exit', teardownSync);
  }
  // prove the teardown
  const leftC = (await Promise.all(ours().map(async (n) => (await dockerq(containerByNameArgs(n))).stdout.trim()))).filter(Boolean).join(' ');
  const leftN = createdNetwork ? (await dockerq(networkByNameArgs(network))).stdout.trim() : '';
  check('teardown', !leftC && !leftN && !existsSync(scratch), leftC || leftN || existsSync(scratch) ? `left behind: ${[leftC && `container ${name}`, leftN && `network ${network}`, existsSync(scratch) && scratch].filter(Boolean).join(', ')}` : 'container, network and scratch directory removed');
  const failed = checks.some((c) => c.status === 'fail');
  return { backupId: b.id, image, checks, failed, ms: performance.now() - t0, resources: { container: name, network, scratch } };
}
