// The contract checker: runs a candidate app image in a sandbox (private internal network with no
// route out, no published port, a throwaway STATE_DIR, production's env with placeholder secrets
// (contract/sandbox-env.mts), the production container restrictions, uid 1000, read-only root),
// observes each contract item and judges it with contract/items.mts. Nothing of production is
// touched: rollout can call runContractCheck({ image, tier: 'required' }) as a gate before it swaps.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { docker, dockerProcess } from '../docker/run.mts';
import { imageIdArgs } from '../commands/docker.mts';
import { withDbReadOnly } from '../host/sqlite-read.mts';
import type { Logger } from '../cli/log.mts';
import { ConfigError } from '../cli/errors.mts';
import { envFileText, sandboxEnv, sandboxSetKeys } from './sandbox-env.mts';
import { chooseProbes, PROBE_DEFAULTS, type StackProbes } from './probes.mts';
import {
  appRunArgs, containerInspectArgs, imageInspectArgs, leftoverContainersArgs, leftoverNetworksArgs, logsTailArgs, networkCreateArgs, networkRmArgs,
  probeRunArgs, removeArgs, sandboxNames, signalArgs, telegramStubRunArgs,
} from '../commands/contract.mts';
import { healthcheckExecArgs, healthcheckKind } from '../commands/healthcheck.mts';
import { pollingBot } from '../config/shape.mts';
import { startTelegramStub } from './telegram-stub.mts';
import {
  CONTRACT_ENV, contractExitCode, judgeContract, missingKeysInLog, readinessProbePath, readOnlyErrorInLog, recommendedNotices, telegramErrorInLog,
  type BootObs, type ContractObs, type DbFileObs, type HealthcheckObs, type HttpProbe, type ItemResult, type ShutdownObs, type Tier,
} from './items.mts';

export { sandboxEnv };
export const DEFAULT_PROBE_IMAGE = 'oven/bun:1.4.5-slim';

export interface ContractCheckOptions {
  /** IMAGE[:TAG] of the candidate app */
  image: string;
  /** values of the operator env file: the app's own keys (e.g. MINI_APP_URL) reach the sandbox;
   * READY_PATH, HEALTHCHECK_PATH and COMPOSE_FILE say what the stack will probe */
  appValues?: Record<string, string>;
  /** READY_PATH / HEALTHCHECK_PATH an earlier pass recorded (STATE_DIR/probes.env), where appValues sets none */
  recordedProbes?: Partial<Record<'READY_PATH' | 'HEALTHCHECK_PATH', string>>;
  /** judge only this tier ('required' for the rollout gate: skips the slower SIGTERM and corrupt-database runs) */
  tier?: Tier;
  /** image the probe container runs (default BUN_IMAGE, else oven/bun:1.4.5-slim) */
  probeImage?: string;
  /** how long the app may take to answer HTTP (default 20 s) */
  bootTimeoutMs?: number;
  log?: Logger;
}

export interface ContractReport {
  image: string;
  results: ItemResult[];
  /** 0 when the required tier passes, 1 otherwise */
  exitCode: 0 | 1;
  ms: number;
  /** the recommended items the app lacks, one notice each (judged from the same run, also for --tier required) */
  notices: string[];
  /** env keys the app named as missing when it exited at start-up (not set in the env file) */
  missingKeys: string[];
  /** the app exited because a Bot API call failed (the sandbox has no route to Telegram): the log line */
  telegramError?: string;
  /** the paths the stack should probe: the env file's, else what the app answered (contract/probes.mts) */
  probes: StackProbes;
}

interface Sandbox {
  root: string;
  envFile: string;
  network: string;
  containers: string[];
}

function makeStateDir(root: string, name: string, dbContent?: string): { data: string; uploads: string } {
  const dir = path.join(root, name);
  const data = path.join(dir, 'data');
  const uploads = path.join(dir, 'uploads');
  for (const d of [data, uploads]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o750 });
    try {
      fs.chownSync(d, CONTRACT_ENV.APP_UID, CONTRACT_ENV.APP_UID);
    } catch {
      fs.chmodSync(d, 0o777); // not root: a throwaway directory anyone may write
    }
  }
  if (dbContent !== undefined) {
    const f = path.join(data, path.basename(CONTRACT_ENV.DB_PATH));
    fs.writeFileSync(f, dbContent, { mode: 0o640 });
    try {
      fs.chownSync(f, CONTRACT_ENV.APP_UID, CONTRACT_ENV.APP_UID);
    } catch {
      fs.chmodSync(f, 0o666);
    }
  }
  return { data, uploads };
}

async function containerState(name: string): Promise<{ Running: boolean; ExitCode: number; Status: string } | null> {
  const p = await docker(containerInspectArgs(name), { nothrow: true });
  if (p.exitCode !== 0) return null;
  return JSON.parse(p.stdout) as { Running: boolean; ExitCode: number; Status: string };
}

async function logTail(name: string): Promise<string> {
  // 60 lines: an uncaught error's message comes before Bun's source excerpt and stack
  const p = await docker(logsTailArgs(name, 60), { nothrow: true });
  return `${p.stdout}\n${p.stderr}`.trim();
}

interface BootResult {
  boot: BootObs;
  health?: HttpProbe;
  ready?: HttpProbe;
  /** status of each extra path asked (/ready, /health/write) */
  paths?: Record<string, number>;
  db?: DbFileObs;
}

/** Docker's healthcheck probe of `path`, run in the app container exactly as Docker runs it every 2 s. */
async function runHealthcheck(app: string, values: Record<string, string>, path: string): Promise<HealthcheckObs> {
  const kind = healthcheckKind((values.COMPOSE_FILE ?? '').split(':').map((f) => f.trim()).filter(Boolean));
  const r = await docker(healthcheckExecArgs(app, kind, path), { nothrow: true });
  return { kind, path, exitCode: r.exitCode ?? 1, output: `${r.stdout}\n${r.stderr}`.trim().slice(0, 1000) };
}

/** Starts the app container and waits, with a probe, until it answers HTTP; notices an early exit. */
async function bootApp(sb: Sandbox, id: string, opts: { image: string; probeImage: string; timeoutMs: number; db?: string; readyPath?: string; extraPaths?: string[]; readDb?: { waitMs: number } }): Promise<BootResult & { name: string; data: string }> {
  const names = sandboxNames(id);
  const dirs = makeStateDir(sb.root, id, opts.db);
  sb.containers.push(names.app, names.probe);
  const run = await docker(appRunArgs({ name: names.app, network: sb.network, image: opts.image, dataDir: dirs.data, uploadsDir: dirs.uploads, envFile: sb.envFile }), { nothrow: true });
  if (run.exitCode !== 0) throw new Error(`docker run ${opts.image} failed: ${run.stderr.trim()}`);
  const probe = docker(probeRunArgs({
    name: names.probe, network: sb.network, probeImage: opts.probeImage, mode: 'boot', appHost: names.app, port: CONTRACT_ENV.PORT, readyPath: opts.readyPath, deadlineMs: opts.timeoutMs,
    extraPaths: opts.extraPaths, ...(opts.readDb ? { dataDir: dirs.data, dbWaitMs: opts.readDb.waitMs } : {}),
  }), { nothrow: true });
  let exited: { exitCode: number } | undefined;
  let done = false;
  const watch = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 300));
      const st = await containerState(names.app);
      if (!done && st && !st.Running) {
        exited = { exitCode: st.ExitCode };
        await docker(removeArgs([names.probe]), { nothrow: true });
        return;
      }
    }
  })();
  const out = await probe;
  done = true;
  await watch;
  let parsed: { answered?: boolean; health?: HttpProbe; ready?: HttpProbe; paths?: Record<string, number>; db?: DbFileObs } = {};
  const line = out.stdout.trim().split('\n').pop() ?? '';
  try {
    parsed = JSON.parse(line);
  } catch {
    if (!exited) throw new Error(`the probe container (${opts.probeImage}) gave no result: ${out.stderr.trim().slice(0, 300) || line}`);
  }
  const boot: BootObs = { answered: Boolean(parsed.answered) };
  if (!boot.answered) {
    const st = exited ?? (await containerState(names.app).then((s) => (s && !s.Running ? { exitCode: s.ExitCode } : undefined)));
    if (st) {
      const tail = await logTail(names.app);
      boot.exitedEarly = { exitCode: st.exitCode, logTail: tail };
      const ro = readOnlyErrorInLog(tail);
      const tg = telegramErrorInLog(tail);
      if (ro) boot.readOnlyError = ro;
      if (tg) boot.telegramError = tg;
    }
  }
  return { name: names.app, data: dirs.data, boot, health: parsed.health, ready: parsed.ready, paths: parsed.paths, db: parsed.db };
}

/** The database as the app left it, read by a probe container running as the app's uid with no network: root never opens a file the app controls. */
async function readDbAsApp(sb: Sandbox, id: string, dataDir: string, probeImage: string): Promise<DbFileObs> {
  const names = sandboxNames(`${id}-db`);
  sb.containers.push(names.probe);
  const out = await docker(probeRunArgs({ name: names.probe, network: sb.network, probeImage, mode: 'db', appHost: 'none', port: CONTRACT_ENV.PORT, deadlineMs: 5000, dataDir }), { nothrow: true });
  try {
    return (JSON.parse(out.stdout.trim().split('\n').pop() ?? '') as { db: DbFileObs }).db;
  } catch {
    return { exists: true, error: `the database probe gave no result: ${out.stderr.trim().slice(0, 200)}` };
  }
}

/** What the contract asks of the database file: WAL, user_version, owner, update_id tables, heartbeat rows (read-only).
 * Smoke reads production's database with it; the checker reads its sandbox's as the app's uid (readDbAsApp). */
export function readContractDb(file: string): DbFileObs {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return { exists: false };
  }
  try {
    return withDbReadOnly(file, (db) => {
      const tables = db.prepare("SELECT DISTINCT m.name AS name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND p.name = 'update_id'").all() as { name: string }[];
      let heartbeatRows = 0;
      try {
        heartbeatRows = (db.prepare('SELECT count(*) AS n FROM job_heartbeats').get() as { n: number }).n;
      } catch {
        heartbeatRows = 0;
      }
      return {
        exists: true,
        journalMode: String(db.pragma('journal_mode', { simple: true })),
        userVersion: Number(db.pragma('user_version', { simple: true })),
        ownerUid: st.uid,
        updateIdTables: tables.map((t) => t.name),
        heartbeatRows,
      };
    });
  } catch (e) {
    return { exists: true, ownerUid: st.uid, error: (e as Error).message };
  }
}

/** SIGTERM the app while a probe polls /ready and /health: is there a lame-duck period? */
async function observeShutdown(sb: Sandbox, id: string, app: string, probeImage: string, readyPath: string): Promise<ShutdownObs | undefined> {
  const names = sandboxNames(`${id}-drain`);
  sb.containers.push(names.probe);
  const probe = dockerProcess(probeRunArgs({ name: names.probe, network: sb.network, probeImage, mode: 'drain', appHost: app, port: CONTRACT_ENV.PORT, readyPath, deadlineMs: 6000 }));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 8000);
    probe.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('polling')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await new Promise((r) => setTimeout(r, 300));
  await docker(signalArgs(app, 'TERM'), { nothrow: true });
  const out = await probe;
  try {
    return JSON.parse(out.stdout.trim().split('\n').pop() ?? '') as ShutdownObs;
  } catch {
    return undefined;
  }
}

const STALE_MS = 15 * 60_000;

/** Sandboxes of interrupted checks (older than any check runs): removed, so they never pile up. */
export async function removeStaleSandboxes(now = Date.now()): Promise<string[]> {
  const old = (text: string) =>
    text.split('\n').filter(Boolean).map((l) => l.split('\t')).filter(([, created]) => {
      const t = Date.parse((created ?? '').replace(/ [A-Z]{3,4}$/, '').replace(/ ([+-]\d{4})$/, '$1').replace(' ', 'T'));
      return Number.isFinite(t) && now - t > STALE_MS;
    }).map(([name]) => name);
  const containers = old((await docker(leftoverContainersArgs(), { nothrow: true })).stdout);
  if (containers.length) await docker(removeArgs(containers), { nothrow: true });
  const networks = old((await docker(leftoverNetworksArgs(), { nothrow: true })).stdout);
  for (const n of networks) await docker(networkRmArgs(n), { nothrow: true });
  return [...containers, ...networks];
}

/**
 * Run the candidate image in a sandbox and judge every contract item (or one tier).
 * Throws ConfigError (exit 2) when the image does not exist; never touches production.
 */
export async function runContractCheck(opts: ContractCheckOptions): Promise<ContractReport> {
  const t0 = performance.now();
  const log = opts.log;
  const probeImage = opts.probeImage || process.env.BUN_IMAGE || DEFAULT_PROBE_IMAGE;
  const timeoutMs = opts.bootTimeoutMs ?? 20_000;
  const id = randomBytes(4).toString('hex');
  const network = sandboxNames(id).network;
  // independent first steps at once (each is a docker round trip; the gate's time is the rollout's)
  const [inspect, probeInspect, swept, net] = await Promise.all([
    docker(imageInspectArgs(opts.image), { nothrow: true }),
    docker(imageIdArgs(probeImage), { nothrow: true }),
    removeStaleSandboxes(),
    docker(networkCreateArgs(network), { nothrow: true }),
  ]);
  if (inspect.exitCode !== 0 || probeInspect.exitCode !== 0 || net.exitCode !== 0) {
    if (net.exitCode === 0) await docker(networkRmArgs(network), { nothrow: true });
    if (inspect.exitCode !== 0) throw new ConfigError(`image ${opts.image} does not exist on this host`, { hint: `build it first (docker build -t ${opts.image} .), or pass the tag rollout built: --image lazyflow-app:<sha>` });
    if (probeInspect.exitCode !== 0) throw new ConfigError(`probe image ${probeImage} does not exist on this host`, { hint: `docker pull ${probeImage}, or pass --probe-image (any image with bun on PATH, e.g. your app's base image)` });
    throw new Error(`docker network create ${network} failed: ${net.stderr.trim()}`);
  }
  if (swept.length) log?.info(`removed ${swept.length} leftover(s) of an interrupted contract check: ${swept.join(', ')}`);
  const config = JSON.parse(inspect.stdout) as { User?: string };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lzf-contract-'));
  const envFile = path.join(root, 'app.env');
  const env = sandboxEnv(opts.appValues);
  fs.writeFileSync(envFile, envFileText(env), { mode: 0o600 });
  const sb: Sandbox = { root, envFile, network, containers: [] };
  const values = opts.appValues ?? {};
  const recorded = opts.recordedProbes ?? {};
  // the probes neither the env file nor a record sets are asked too, so the stack can follow what the app answers
  const explicitReady = (values.READY_PATH ?? '').trim() || (recorded.READY_PATH ?? '');
  const explicitHc = (values.HEALTHCHECK_PATH ?? '').trim() || (recorded.HEALTHCHECK_PATH ?? '');
  const extraPaths = [...new Set([...(explicitReady ? [] : [PROBE_DEFAULTS.READY_PATH]), ...(explicitHc ? [] : [PROBE_DEFAULTS.HEALTHCHECK_PATH])])];
  const probeReady = readinessProbePath(explicitReady || PROBE_DEFAULTS.READY_PATH);
  let probes = chooseProbes(values, {}, recorded);
  const obs: ContractObs = { imageUser: config.User ?? '', boot: { answered: false }, readyPath: probes.READY_PATH.value };
  try {
    log?.info(`contract check of ${opts.image}: starting it in a sandbox`);
    if (pollingBot(values)) {
      // a poller calls getMe / getUpdates before it is up: the sandbox's own stub answers (telegram-stub.mts)
      const stub = sandboxNames(id).telegram;
      sb.containers.push(stub);
      log?.info('contract check: bot shape polling, a stub Bot API on the sandbox network answers its getMe and getUpdates');
      await startTelegramStub(telegramStubRunArgs({ name: stub, network, probeImage }), stub);
    }
    const badDb = () => bootApp(sb, `${id}-baddb`, { image: opts.image, probeImage, timeoutMs: Math.min(timeoutMs, 10_000), db: 'this is not a SQLite database\n'.repeat(200) });
    // The required tier (the rollout gate) boots with the corrupt database at the same time as the
    // main boot: the two sandboxes share nothing but the network, and the gate costs one boot instead
    // of two. The full check keeps them apart: the SIGTERM observation is timing-sensitive.
    const parallel = opts.tier === 'required';
    if (parallel) log?.info('contract check: also starting it with a corrupt database at DB_PATH');
    const badEarly = parallel ? badDb().then((b) => ({ ok: b }), (err: unknown) => ({ err })) : undefined;
    // the required tier reads the database at once; the full check gives the jobs' heartbeat a tick first
    const main = await bootApp(sb, id, { image: opts.image, probeImage, timeoutMs, readyPath: probeReady, extraPaths, readDb: { waitMs: parallel ? 0 : 1200 } });
    obs.boot = main.boot;
    obs.health = main.health;
    obs.ready = main.ready;
    if (main.boot.answered) {
      const seen = main.paths ?? {};
      probes = chooseProbes(values, { ready: explicitReady ? undefined : (seen[PROBE_DEFAULTS.READY_PATH] ?? main.ready?.status), healthWrite: seen[PROBE_DEFAULTS.HEALTHCHECK_PATH] }, recorded);
      obs.readyPath = probes.READY_PATH.value;
      obs.healthcheck = await runHealthcheck(main.name, values, probes.HEALTHCHECK_PATH.value);
      obs.db = main.db ?? { exists: false };
      if (opts.tier !== 'required') {
        log?.info('contract check: SIGTERM with a probe polling /ready');
        obs.shutdown = await observeShutdown(sb, id, main.name, probeImage, probeReady);
        if (!obs.db.exists) obs.db = await readDbAsApp(sb, id, main.data, probeImage);
      }
      // the full check frees the app before its corrupt-database boot; the gate's boots ran side by
      // side, and the final cleanup removes both in one call
      if (!parallel) await docker(removeArgs([main.name]), { nothrow: true });
      let bad: Awaited<ReturnType<typeof badDb>>;
      if (badEarly) {
        const r = await badEarly;
        if ('err' in r) throw r.err;
        bad = r.ok;
      } else {
        log?.info('contract check: start with a corrupt database at DB_PATH');
        bad = await badDb();
      }
      obs.brokenDb = { exited: Boolean(bad.boot.exitedEarly), health: bad.health };
    } else {
      await badEarly; // never judged when the app did not answer at all; settled before cleaning up
    }
  } finally {
    if (sb.containers.length) await docker(removeArgs(sb.containers), { nothrow: true });
    await docker(networkRmArgs(sb.network), { nothrow: true });
    fs.rmSync(root, { recursive: true, force: true });
  }
  const all = judgeContract(obs);
  const results = opts.tier ? all.filter((r) => r.tier === opts.tier) : all;
  const exitCode = contractExitCode(results);
  return {
    image: opts.image, results, exitCode, ms: Math.round(performance.now() - t0),
    notices: exitCode === 0 ? recommendedNotices(all) : [],
    // a key is missing only when the env file lacks it: the sandbox sets every key production sets
    missingKeys: obs.boot.exitedEarly && !obs.boot.telegramError ? missingKeysInLog(obs.boot.exitedEarly.logTail, sandboxSetKeys(env)) : [],
    ...(obs.boot.telegramError ? { telegramError: obs.boot.telegramError } : {}),
    probes,
  };
}
