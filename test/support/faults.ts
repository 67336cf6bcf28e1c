// The fault harness: run one operation (rollout, rollback, rollback --with-db, restore, recover) the
// way an operator's terminal does, as the leader of its own process group, wait until its journal
// shows a given point, then interrupt it the way the real world does, and measure what a user of the
// site notices while nothing but the installed recovery timer acts:
//   sighup        SIGHUP to the group (the SSH session dropped; our ends of its output pipes close too,
//                 as a vanished terminal's would)
//   sigint        SIGINT to the group (Ctrl-C)
//   kill9-script  SIGKILL of the script process only (OOM killer); its children live on
//   kill9-group   SIGKILL of the whole group (the terminal's processes; a detached critical-section
//                 worker, in its own session, lives on)
//   reboot        SIGKILL of the group and of the session of the operation lock's holder (the detached
//                 worker and its docker compose child): nothing of the operation survives, as at a
//                 reboot or power loss; only the recovery timer can finish it
// Shared by test/e2e/faults-*.test.ts (one representative fault per phase) and bench/faults/run.mts
// (the whole matrix).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Stack } from './stack.ts';
import { repoRoot, run, runScript, type RunResult } from './run.ts';
import { appOps, sampleContainers, startLoad, stats, type LoadStats } from './load.mts';
import { makeMessageUpdate, signInitData } from './telegram.ts';
import { startWriter, type Writer } from './backup.ts';
import { readJournal, type Release } from '../../scripts/lib/release/journal.mts';

export const INTERRUPTIONS = ['sighup', 'sigint', 'kill9-script', 'kill9-group', 'reboot'] as const;
export type Interruption = (typeof INTERRUPTIONS)[number];

/** The recovery entry point the engine installs as a boot + every-minute timer. */
export const RECOVER_SCRIPT = 'recover.mts';
export const recoverScriptExists = () => existsSync(resolve(repoRoot, 'scripts', RECOVER_SCRIPT));

/**
 * The e2e timer interval (the installed timer runs every 60 s; tests use a shorter one so CI stays
 * fast) and the time one recovery run may take on top of it to bring the app back: node start-up and
 * reading the journals (~1 s), compose up of the previous image (~2 s), the app's boot until Docker
 * reports healthy (healthcheck every 2 s, ~3-6 s on a loaded 2-core machine), plus margin for a
 * machine shared with other jobs. A kill -9 must cost at most RECOVERY_INTERVAL_S + SWAP_BOUND_S.
 */
export const RECOVERY_INTERVAL_S = 10;
export const SWAP_BOUND_S = 25;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// the operation, in its own process group

export interface RunningOp {
  label: string;
  child: ChildProcess;
  pid: number;
  /** stdout + stderr so far (stops growing once the pipes are closed by a sighup) */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  startedAt: number;
  /** STATE_DIR of the stack (where ops.lock names the lock's holder) */
  stateDir?: string;
}

/** Start `node scripts/<script> --config <env file> ...args` detached: the leader of a new process group. */
export function startOperation(stack: Pick<Stack, 'envFile'> & Partial<Pick<Stack, 'stateDir'>>, script: string, args: string[], label = script): RunningOp {
  const child = spawn(process.execPath, [resolve(repoRoot, 'scripts', script), '--config', stack.envFile, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  child.stdout!.on('error', () => {});
  child.stderr!.on('error', () => {});
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('exit', (code, signal) => {
      done = true;
      res({ code, signal });
    }),
  );
  return { label, child, pid: child.pid!, output: () => out, exited, hasExited: () => done, startedAt: Date.now(), stateDir: stack.stateDir };
}

export function deliver(op: RunningOp, what: Interruption): void {
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-op.pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  };
  switch (what) {
    case 'sighup':
      signalGroup('SIGHUP');
      // the terminal is gone: whoever still writes to it gets EPIPE, as with a dropped SSH session
      op.child.stdout?.destroy();
      op.child.stderr?.destroy();
      break;
    case 'sigint':
      signalGroup('SIGINT');
      break;
    case 'kill9-script':
      try {
        process.kill(op.pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
      break;
    case 'kill9-group':
      signalGroup('SIGKILL');
      break;
    case 'reboot': {
      signalGroup('SIGKILL');
      // then the holder the lock names: once the script is dead the lock cannot change hands any more,
      // so this is the detached worker if it got the lock, and no worker runs without it
      let holder: number | undefined;
      try {
        holder = (JSON.parse(readFileSync(join(op.stateDir ?? '', 'ops.lock'), 'utf8')) as { pid?: number }).pid;
      } catch {
        /* no lock: nothing detached to kill */
      }
      if (holder && holder !== op.pid) {
        try {
          process.kill(-holder, 'SIGKILL'); // its whole session: the worker leads it, its docker compose child dies with it
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
        }
      }
      break;
    }
  }
}

/** Wait until `trigger` holds while the operation still runs; throws (with its output) if it ends first. */
export async function waitForPoint(op: RunningOp, what: string, trigger: () => boolean | Promise<boolean>, timeoutMs = 180_000, everyMs = 20): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let hit = false;
    try {
      hit = await trigger();
    } catch {
      /* a journal being written: try again */
    }
    if (hit) return Date.now();
    if (op.hasExited()) throw new Error(`${op.label} ended before ${what}:\n${op.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} in ${op.label}:\n${op.output().slice(-3000)}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// observation points (what the journals and Docker show)

export const releases = (stateDir: string): Release[] => readJournal(join(stateDir, 'releases.jsonl')).releases;
export const inProgress = (stateDir: string) => releases(stateDir).filter((r) => r.result === 'in-progress');
/** the automatic revert of the release built from `gitSha` has begun (its revert line is in progress) */
export function revertUnderway(stateDir: string, gitSha: string): () => boolean {
  return () => {
    const rs = releases(stateDir);
    const bad = rs.find((x) => x.gitSha === gitSha);
    return Boolean(bad && rs.some((x) => x.previousRelease === bad.id && x.result === 'in-progress'));
  };
}

export function restoreJournal(stateDir: string): { phase?: string; [k: string]: unknown } | null {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'restore-journal.json'), 'utf8'));
  } catch {
    return null;
  }
}

export interface AppContainerState {
  id: string;
  image: string;
  status: string;
  health?: string;
}

/** Every app container of the stack's project, in any state (running, created, exited, ...). */
export async function appContainerStates(stack: Pick<Stack, 'project'>): Promise<AppContainerState[]> {
  const ids = (await run('docker', ['ps', '-a', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${stack.project}`, '--filter', 'label=com.docker.compose.service=app'])).stdout
    .split('\n').filter(Boolean);
  if (!ids.length) return [];
  const r = await run('docker', ['inspect', '--format', '{{.Id}}\t{{.Config.Image}}\t{{.State.Status}}\t{{if .State.Health}}{{.State.Health.Status}}{{end}}', ...ids]);
  return r.stdout.split('\n').filter(Boolean).map((l) => {
    const [id, image, status, health] = l.split('\t');
    return { id: id.slice(0, 12), image, status, ...(health ? { health } : {}) };
  });
}

export const describeApps = (xs: AppContainerState[]) => xs.map((c) => `${c.image} ${c.status}${c.health ? `/${c.health}` : ''}`).join(', ') || 'no app container';

// ---------------------------------------------------------------------------------------------
// the simulated recovery timer

export interface TimerRun {
  at: number;
  code: number | null;
  ms: number;
  output: string;
}

export interface RecoveryTimer {
  runs: TimerRun[];
  /** set when scripts/recover.mts does not exist (the engine's branch has not landed) */
  missing: boolean;
  stop(): Promise<void>;
}

/**
 * Run `node scripts/recover.mts --config F` every `intervalS` seconds, as the installed timer would (never
 * two at once); null: no timer at all (what the operation's own processes do, unaided).
 */
export function startRecoveryTimer(stack: Pick<Stack, 'envFile'>, intervalS: number | null): RecoveryTimer {
  const t: RecoveryTimer = { runs: [], missing: !recoverScriptExists(), stop: async () => {} };
  if (intervalS === null) return t;
  let running = true;
  let wake: () => void = () => {};
  const loop = (async () => {
    while (running) {
      await new Promise<void>((r) => {
        const h = setTimeout(r, intervalS * 1000);
        wake = () => {
          clearTimeout(h);
          r();
        };
      });
      if (!running) break;
      if (!recoverScriptExists()) {
        t.missing = true;
        continue;
      }
      t.missing = false;
      const at = Date.now();
      const r = await runScript(RECOVER_SCRIPT, ['--config', stack.envFile], { timeoutMs: 300_000 });
      t.runs.push({ at, code: r.code, ms: r.ms, output: r.stdout + r.stderr });
    }
  })();
  t.stop = async () => {
    running = false;
    wake();
    await loop;
  };
  return t;
}

// ---------------------------------------------------------------------------------------------
// traffic: HTTPS load, tracked writes, Telegram updates

export interface Traffic {
  writer: Writer;
  updates: { id: number; chat: number; at: number }[];
  stop(): Promise<{ load: LoadStats; writeFailures: string[] }>;
}

let chatBase = 8_000_000;

/** GETs and POSTs with bodies through Caddy, writes whose titles are tracked, and one update every `updateEveryMs`. */
export function startTraffic(stack: Stack, o: { concurrency?: number; updateEveryMs?: number; label?: string } = {}): Traffic {
  const auth = `tma ${signInitData(stack.botToken, { user: { id: 5_660_001, first_name: 'Fault' } })}`;
  const load = startLoad({ domain: stack.domain, httpsPort: stack.httpsPort, ca: stack.ca }, appOps(auth), { concurrency: o.concurrency ?? 3, pauseMs: 20 });
  const writer = startWriter(stack, `fault-${o.label ?? 'w'}-${Date.now().toString(36)}`, 1);
  const updates: Traffic['updates'] = [];
  let sending = Boolean(stack.fakeBot);
  const base = (chatBase += 100_000);
  const sender = (async () => {
    for (let i = 0; sending; i++) {
      const chat = base + i;
      updates.push({ id: stack.fakeBot!.queueUpdate(stack.botToken, makeMessageUpdate({ chat_id: chat, text: '/start' })), chat, at: Date.now() });
      await sleep(o.updateEveryMs ?? 200);
    }
  })();
  return {
    writer,
    updates,
    async stop() {
      sending = false;
      await sender;
      await writer.stop();
      return { load: stats(await load.stop()), writeFailures: writer.failures };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// the data a user gave us: where is it now?

const BACKUP_ID_IN_TEXT = /\b\d{8}T\d{6}Z(?:-[a-z0-9-]+)?\b/g;

function dbFilesUnder(p: string, depth = 4): string[] {
  if (!existsSync(p)) return [];
  const st = statSync(p);
  if (st.isFile()) return p.endsWith('.db') ? [p] : [];
  if (!st.isDirectory() || depth === 0) return [];
  return readdirSync(p).flatMap((n) => dbFilesUnder(join(p, n), depth - 1));
}

/**
 * Databases the output names as kept aside: every path under STATE_DIR it mentions (kept-aside dirs,
 * old-data, ...) and every backup id it mentions (a safety backup), never the live one.
 */
export function keptAsideDbs(stateDir: string, output: string): string[] {
  const found = new Set<string>();
  const root = resolve(stateDir);
  for (const m of output.matchAll(/(\/[^\s'"`),;]+)/g)) {
    const p = m[1].replace(/[.:]+$/, '');
    const live = join(root, 'data');
    if (p.startsWith(root + '/') && p !== live && !p.startsWith(live + '/')) for (const f of dbFilesUnder(p)) found.add(f);
  }
  for (const m of output.matchAll(BACKUP_ID_IN_TEXT)) for (const f of dbFilesUnder(join(root, 'backups', m[0]))) found.add(f);
  return [...found].sort();
}

function readRows<T>(file: string, sql: string): T[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as T[];
  } catch {
    return [];
  } finally {
    db.close();
  }
}

export interface DataCheck {
  acked: number;
  /** acknowledged writes not in the live database: found nowhere, or only kept aside by a step the operator did not choose */
  lostWrites: string[];
  /** acknowledged writes found only in a kept-aside state, by file (lost too unless the operator chose the data) */
  keptAside: Record<string, number>;
  updates: number;
  /** queued updates processed nowhere (live or kept aside) */
  lostUpdates: number[];
  /** updates whose chat got more than one reply (handled twice) */
  duplicateUpdates: number[];
  /** of the lost ones: still queued at the (fake) Bot API at the end, never acknowledged by the app (a backlog, not a drop) */
  stillQueued: number;
  /** webhook delivery attempts of this case's updates that failed (no 2xx, or no answer) */
  failedDeliveries: number;
}

/**
 * The operator chose the data that replaces the live one: a restore, or rollback --with-db. Only then is
 * a write moved into kept/ not lost; moved aside by anything automatic, it is (the guide: "a write moved
 * aside that the operator did not choose to move counts as lost").
 */
export function operatorChoseData(script: string, args: string[]): boolean {
  return /(^|\/)restore\.mts$/.test(script) || (/(^|\/)rollback\.mts$/.test(script) && args.includes('--with-db'));
}

export function checkData(stack: Stack, writer: Writer, updates: Traffic['updates'], output: string, chosen = false): DataCheck {
  const live = join(stack.stateDir, 'data', 'lazyflow.db');
  const aside = keptAsideDbs(stack.stateDir, output);
  const titles = (f: string) => new Set(readRows<{ title: string }>(f, 'SELECT title FROM tasks').map((r) => r.title));
  const processed = (f: string) => new Set(readRows<{ update_id: number }>(f, 'SELECT update_id FROM bot_messages').map((r) => r.update_id));
  const liveTitles = titles(live);
  const asideTitles = aside.map((f) => ({ f, t: titles(f), u: processed(f) }));
  const keptAside: Record<string, number> = {};
  const lostWrites: string[] = [];
  for (const w of writer.acked) {
    if (liveTitles.has(w.title)) continue;
    const where = asideTitles.find((a) => a.t.has(w.title));
    if (where) keptAside[where.f] = (keptAside[where.f] ?? 0) + 1;
    if (!where || !chosen) lostWrites.push(w.title);
  }
  const liveUpdates = processed(live);
  const lostUpdates = updates.filter((u) => !liveUpdates.has(u.id) && (!chosen || !asideTitles.some((a) => a.u.has(u.id)))).map((u) => u.id);
  const replies = new Map<number, number>();
  for (const m of stack.fakeBot?.sentMessages(stack.botToken) ?? []) replies.set(Number(m.chat_id), (replies.get(Number(m.chat_id)) ?? 0) + 1);
  const duplicateUpdates = updates.filter((u) => (replies.get(u.chat) ?? 0) > 1).map((u) => u.id);
  const queued = new Set((stack.fakeBot?.pendingUpdates(stack.botToken) ?? []).map((u) => u.update_id));
  const ours = new Set(updates.map((u) => u.id));
  const failedDeliveries = (stack.fakeBot?.deliveries ?? []).filter((d) => d.token === stack.botToken && ours.has(d.update_id) && !d.ok).length;
  return { acked: writer.acked.length, lostWrites, keptAside, updates: updates.length, lostUpdates, duplicateUpdates, stillQueued: lostUpdates.filter((id) => queued.has(id)).length, failedDeliveries };
}

// ---------------------------------------------------------------------------------------------
// one fault, measured

export interface FaultCase {
  stack: Stack;
  label: string;
  script: string;
  args: string[];
  /** the point to interrupt at (polled every 20 ms while the operation runs) */
  at: { what: string; when: () => boolean | Promise<boolean> };
  interruption: Interruption;
  /** seconds between simulated timer runs of recover.mts; null: no timer (the operation must recover unaided) */
  recoveryIntervalS: number | null;
  /** give up waiting for the site to settle after this long */
  settleTimeoutS?: number;
  /** extra work right after the fault (e.g. interrupt the recovery itself); its output counts */
  afterFault?: (ctx: { op: RunningOp; timer: RecoveryTimer }) => Promise<string | void>;
  concurrency?: number;
}

export interface FaultResult {
  label: string;
  interruption: Interruption;
  /** fault delivered at (epoch ms), and the app containers seen ~2 s later */
  faultAt: number;
  appsAfterFault: string;
  /** seconds from the fault until a request started after it got a 2xx through Caddy; null: never */
  secondsToFirst2xx: number | null;
  /** seconds from the fault until no operation was left unfinished and one healthy app served; null: never */
  secondsToSettled: number | null;
  unsettledWhy?: string;
  failedRequests: number;
  requests: number;
  failures: { op: string; status: number; error?: string }[];
  maxAppContainers: number;
  data: DataCheck;
  scriptExit: { code: number | null; signal: NodeJS.Signals | null } | 'still running';
  timerRuns: number;
  timerMissing: boolean;
  output: string;
  /** STATE_DIR/logs/*.log at the end (ops.log, the detached worker's critical-<id>.log): what a terminal that went away missed */
  logs: string;
  appsAtEnd: string;
  /** when a request failed: the proxy's and the apps' log lines from 5 s before the first failure, without successful requests and health checks */
  proxyLog: string;
}

/** One healthy running app container, no unfinished release, no pending restore, and /health 200 through Caddy. */
export async function settledWhy(stack: Stack): Promise<string | null> {
  const open = inProgress(stack.stateDir);
  if (open.length) return `unfinished in the releases journal: ${open.map((r) => `${r.id} (${r.kind}, phase ${r.phase})`).join(', ')}`;
  const rj = restoreJournal(stack.stateDir);
  if (rj) return `restore journal present (phase ${rj.phase})`;
  const apps = await appContainerStates(stack);
  const running = apps.filter((c) => c.status === 'running');
  if (running.length !== 1 || (running[0].health && running[0].health !== 'healthy')) return `app containers: ${describeApps(apps)}`;
  try {
    const r = await stack.fetch('/health', { timeoutMs: 3_000 });
    if (r.status !== 200) return `/health answers ${r.status}`;
  } catch (e) {
    return `/health: ${(e as Error).message}`;
  }
  return null;
}

export async function runFault(c: FaultCase): Promise<FaultResult> {
  const { stack } = c;
  const traffic = startTraffic(stack, { concurrency: c.concurrency, label: c.label.replace(/[^a-z0-9]+/gi, '-') });
  const sampler = sampleContainers(async () => (await stack.containers('app')).length, 50);
  const timer = startRecoveryTimer(stack, c.recoveryIntervalS);
  let extraOutput = '';
  const op = startOperation(stack, c.script, c.args, c.label);
  let faultAt = 0;
  let first2xx: number | null = null;
  let probing = true;
  let prober: Promise<void> = Promise.resolve();
  let appsAfterFault = '';
  try {
    await waitForPoint(op, c.at.what, c.at.when);
    faultAt = Date.now();
    deliver(op, c.interruption);
    // a request sent after the fault: held by Caddy until an app answers, or failed after its hold window
    prober = (async () => {
      while (probing && first2xx === null) {
        try {
          const r = await stack.fetch('/health', { timeoutMs: 40_000 });
          if (r.status >= 200 && r.status < 300) first2xx = Date.now();
        } catch {
          /* refused or timed out: try again */
        }
        if (first2xx === null) await sleep(250);
      }
    })();
    await sleep(2_000);
    appsAfterFault = describeApps(await appContainerStates(stack));
    if (c.afterFault) extraOutput += (await c.afterFault({ op, timer })) ?? '';
  } catch (e) {
    deliver(op, 'kill9-group');
    probing = false;
    await timer.stop();
    await traffic.stop();
    await sampler.stop();
    throw e;
  }
  const deadline = Date.now() + (c.settleTimeoutS ?? 150) * 1000;
  let settledAt: number | null = null;
  let why: string | null = 'not checked';
  while (Date.now() < deadline) {
    why = await settledWhy(stack);
    if (!why && first2xx !== null) {
      settledAt = Date.now();
      break;
    }
    await sleep(250);
  }
  probing = false;
  await prober;
  await timer.stop();
  // let Telegram's redeliveries of anything refused meanwhile arrive before counting
  if (stack.fakeBot && settledAt) await stack.fakeBot.waitForDrained(stack.botToken, 60_000).catch(() => {});
  const { load, writeFailures } = await traffic.stop();
  if (stack.fakeBot && settledAt) await stack.fakeBot.waitForDrained(stack.botToken, 30_000).catch(() => {});
  const seen = await sampler.stop();
  const exitedYet = op.hasExited();
  const scriptExit = exitedYet ? await op.exited : 'still running';
  // the operation's own logs count as its output: ops.log, and the detached worker's critical-<id>.log
  const opsLog = (() => {
    const dir = join(stack.stateDir, 'logs');
    try {
      return readdirSync(dir).filter((n) => n.endsWith('.log')).map((n) => readFileSync(join(dir, n), 'utf8')).join('\n');
    } catch {
      return '';
    }
  })();
  const output = [op.output(), extraOutput, ...timer.runs.map((r) => r.output)].join('\n');
  const data = checkData(stack, traffic.writer, traffic.updates, `${output}\n${opsLog}`, operatorChoseData(c.script, c.args));
  // a failed request: what the proxy and the apps logged around it, beyond their requests that went well
  let proxyLog = '';
  const failedAt = [...load.failures.map((f) => f.start), ...writeFailures.map((e) => Date.parse(e.split(' ')[0]))].filter(Number.isFinite).sort((a, b) => a - b);
  if (failedAt.length) {
    const first = failedAt[0];
    const logs = await stack.compose('logs', '--no-color', '--timestamps', '--since', new Date(first - 5_000).toISOString(), '--until', new Date(first + 3_000).toISOString(), 'caddy', 'app');
    proxyLog = logs.stdout.split('\n').filter((l) => !/"status":(20\d|30\d)|status code out of tolerances|HTTP request failed/.test(l)).slice(0, 80).join('\n');
  }
  return {
    label: c.label,
    interruption: c.interruption,
    faultAt,
    appsAfterFault,
    secondsToFirst2xx: first2xx === null ? null : (first2xx - faultAt) / 1000,
    secondsToSettled: settledAt === null ? null : (settledAt - faultAt) / 1000,
    ...(settledAt === null ? { unsettledWhy: why ?? 'no 2xx through Caddy' } : {}),
    failedRequests: load.failed + writeFailures.length,
    requests: load.requests + traffic.writer.acked.length + writeFailures.length,
    failures: [...load.failures.map((f) => ({ op: f.op, status: f.status, ...(f.error ? { error: f.error } : {}) })), ...writeFailures.map((e) => ({ op: 'POST /tasks (tracked)', status: 0, error: e.slice(0, 200) }))],
    maxAppContainers: Math.max(0, ...seen.map((s) => s.n)),
    data,
    scriptExit,
    timerRuns: timer.runs.length,
    timerMissing: timer.missing,
    output,
    logs: opsLog,
    appsAtEnd: describeApps(await appContainerStates(stack)),
    proxyLog,
  };
}

/** One line for logs and failure messages. */
export function summarize(r: FaultResult): string {
  const s = (x: number | null) => (x === null ? 'never' : `${x.toFixed(1)} s`);
  return `${r.label} / ${r.interruption}: 2xx after ${s(r.secondsToFirst2xx)}, settled after ${s(r.secondsToSettled)}${r.unsettledWhy ? ` (${r.unsettledWhy})` : ''}; ` +
    `${r.failedRequests}/${r.requests} failed; max ${r.maxAppContainers} app container(s); lost writes ${r.data.lostWrites.length}/${r.data.acked}` +
    `${Object.keys(r.data.keptAside).length ? ` (kept aside: ${JSON.stringify(r.data.keptAside)})` : ''}; lost updates ${r.data.lostUpdates.length}/${r.data.updates}${r.data.stillQueued ? ` (${r.data.stillQueued} still queued at the Bot API)` : ''}, duplicates ${r.data.duplicateUpdates.length}, failed deliveries ${r.data.failedDeliveries}; ` +
    `apps 2 s after the fault: ${r.appsAfterFault}; at the end: ${r.appsAtEnd}; script ${r.scriptExit === 'still running' ? 'still running' : `exit ${r.scriptExit.code ?? r.scriptExit.signal}`}; ` +
    `timer runs ${r.timerRuns}${r.timerMissing ? ` (scripts/${RECOVER_SCRIPT} does not exist)` : ''}`;
}

export function explainResult(r: FaultResult): string {
  return `${summarize(r)}\nfailures: ${JSON.stringify(r.failures.slice(0, 5))}\nlost writes: ${r.data.lostWrites.slice(0, 5).join(', ')}\n--- output (tail) ---\n${r.output.slice(-4000)}` +
    (r.proxyLog ? `\n--- caddy and app logs around the fault, successful requests left out ---\n${r.proxyLog}` : '');
}

export type { RunResult };

/**
 * Before a case: if an earlier case left the site down or an operation unfinished, bring it back the
 * way an operator would (restore --recover, then a rollout of a good commit, which recovers what is
 * unfinished first), so each case measures its own fault. Returns what had to be repaired, or null.
 */
export async function ensureServing(stack: Stack, rolloutArgs: string[]): Promise<string | null> {
  const why = await settledWhy(stack);
  if (!why) return null;
  if (restoreJournal(stack.stateDir)) await runScript('restore.mts', ['--config', stack.envFile, '--recover'], { timeoutMs: 240_000 });
  const r = await runScript('rollout.mts', ['--config', stack.envFile, ...rolloutArgs], { timeoutMs: 240_000 });
  const still = await settledWhy(stack);
  if (still) throw new Error(`the site is still not serving after repairing (${why}): ${still}\nrollout exit ${r.code}: ${r.stderr.slice(-2000)}`);
  console.warn(`!!! repaired by hand before this case: ${why}`);
  return why;
}

/**
 * The middle of a swap: compose is stopping the old app container (its app logged `shutdown_start`
 * on SIGTERM and is in its lame-duck second), and will then create and start the new one. A fault
 * here, without a detached critical section, is the one issue 7 describes: the old app stops, the new
 * one is never started (or left `Created`). Polling Docker for the new container's `created` state
 * misses it: compose creates and starts it within milliseconds, after the old one has stopped.
 */
export function swapUnderway(oldContainerId: string): () => Promise<boolean> {
  // only this run of the container: one restarted in place keeps the logs of its earlier stops
  let since: string | undefined;
  return async () => {
    since ??= (await run('docker', ['inspect', '--format', '{{.State.StartedAt}}', oldContainerId])).stdout.trim();
    const r = await run('docker', ['logs', '--since', since, oldContainerId]);
    return /shutdown_start/.test(r.stdout + r.stderr);
  };
}
