// The critical section of an operation (a rollout's or rollback's stop old, start new, gates,
// automatic revert, record; a restore's stop the app, swap in the restored data, start it and wait
// until healthy, or put the kept-aside state back) runs in a worker spawned detached: its own session
// and process group (setsid), no controlling terminal, stdio to STATE_DIR/logs/critical-<id>.log.
// SIGHUP from a dropped SSH session, Ctrl-C or SIGTERM to the operator's process group reach only this
// parent, which then says plainly that the operation continues in pid N and how to follow it. The
// operation lock is handed to the worker (pid and a new token), so no other operation or recovery
// starts while it runs; the worker releases it. The worker's outcome (its value, or the error it
// threw) comes back through a result file, so the parent exits as the operation did.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { StepError } from '../cli/errors.mts';
import { compileCacheDir } from '../cli/compile-cache.mts';
import { processStartTime, readLock, type LockHandle, type LockInfo } from '../host/lock.mts';
import type { CriticalContext, OpResult } from './rollout.mts';
import type { RollbackCriticalContext } from './rollback.mts';
import type { RestoreCriticalContext, RestoreResult } from '../restore/restore.mts';

export type WorkerJob =
  | ({ kind?: 'rollout' } & CriticalContext)
  | ({ kind: 'rollback' } & RollbackCriticalContext)
  | ({ kind: 'restore' } & RestoreCriticalContext);

/** what each kind of job returns through the result file */
export type WorkerValue<J extends WorkerJob> = J extends { kind: 'restore' } ? RestoreResult : OpResult;

/** the result file: the critical section's value, or the error it threw (message with its step, hint, exit code) */
export type WorkerOutcome<T = unknown> =
  | { ok: true; value: T }
  | { ok: false; error: { message: string; step?: string; hint?: string; exitCode: number } };

export const WORKER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'critical-worker.mts');

export interface WorkerPayload {
  envFile: string;
  ctx: WorkerJob;
  /** the lock token the worker owns after the handover */
  lockToken: string;
  resultFile: string;
}

/** how long the worker waits for the lock to name it before it gives up (the parent hands it over at once) */
export const HANDOVER_WAIT_MS = 10_000;

export const runDir = (env: OpsEnv) => path.join(env.layout.root, 'run');
export const criticalLog = (env: OpsEnv, id: string) => path.join(env.layout.logs, `critical-${id}.log`);

/** Rewrite the lock for the worker: same operation, the worker's pid, a new token (atomic rename). */
function handOverLock(lock: LockHandle, pid: number, token: string, step: string): void {
  const cur = readLock(lock.path);
  if (!cur || cur.token !== lock.info.token) throw new StepError(`the operation lock ${lock.path} is no longer ours: cannot hand it to the worker`, { step });
  const next: LockInfo = { ...cur, pid, pidStart: processStartTime(pid), token };
  const tmp = `${lock.path}.handover-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(next) + '\n', { mode: 0o644 });
  fs.renameSync(tmp, lock.path);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How the parent names a job to the operator: what continues, its steps, where its result shows. */
export function describeJob(env: Pick<OpsEnv, 'file'>, job: WorkerJob): { noun: string; what: string; steps: string; result: string } {
  switch (job.kind) {
    case 'restore':
      return {
        noun: 'restore',
        what: `the restore of backup ${job.backupId}`,
        steps: 'stop the app, swap in the restored data, start it and wait until healthy, or put the kept-aside state back',
        result: `node scripts/restore.mts --config ${env.file} --list`,
      };
    default:
      return {
        noun: 'swap',
        what: `the swap of ${job.id}`,
        steps: 'stop old, start new, gates, or revert',
        result: `node scripts/rollback.mts --config ${env.file} --list`,
      };
  }
}

/** Rebuild the worker's error in the parent: same message, step, hint and exit code. */
export function workerError(e: Extract<WorkerOutcome, { ok: false }>['error']): StepError {
  const err = new StepError(e.message, { hint: e.hint });
  if (e.step) err.step = e.step;
  err.exitCode = e.exitCode;
  return err;
}

export async function runDetached<J extends WorkerJob>(env: OpsEnv, log: Logger, lock: LockHandle, ctx: J): Promise<WorkerValue<J>> {
  fs.mkdirSync(runDir(env), { recursive: true, mode: 0o700 });
  fs.mkdirSync(env.layout.logs, { recursive: true });
  pruneCriticalLogs(env.layout.logs, CRITICAL_LOGS_KEPT);
  clearRunDir(runDir(env));
  const words = describeJob(env, ctx);
  const logFile = criticalLog(env, ctx.id);
  const payloadFile = path.join(runDir(env), `${ctx.id}.json`);
  const resultFile = path.join(runDir(env), `${ctx.id}.result.json`);
  const token = randomBytes(8).toString('hex');
  const payload: WorkerPayload = { envFile: path.resolve(env.file), ctx, lockToken: token, resultFile };
  fs.writeFileSync(payloadFile, JSON.stringify(payload), { mode: 0o600 });
  fs.rmSync(resultFile, { force: true });
  const out = fs.openSync(logFile, 'a', 0o640);
  const cacheDir = compileCacheDir();
  const child = spawn(process.execPath, [WORKER_SCRIPT, payloadFile], {
    detached: true, // setsid(): own session and process group, no controlling terminal
    stdio: ['ignore', out, out],
    cwd: env.projectDir,
    // the worker loads the toolkit again: through the compile cache when it is safe (cli/compile-cache.mts)
    env: { ...process.env, NO_COLOR: '1', ...(cacheDir ? { NODE_COMPILE_CACHE: cacheDir } : {}) },
  });
  fs.closeSync(out);
  const pid = child.pid;
  if (!pid) throw new StepError(`could not start the ${words.noun} worker`, { step: words.noun });
  handOverLock(lock, pid, token, words.noun);
  const follow = `tail -f ${logFile}`;
  log.info(`the ${words.noun} runs in pid ${pid} (its own session: closing this terminal does not stop it); log: ${logFile}`);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  // operator's signals: say where the operation continues, then leave it to the worker
  const saved = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, process.listeners(sig)] as const);
  const onSignal = (sig: NodeJS.Signals) => {
    const msg = `\n${sig}: this terminal stops following, but ${words.what} continues in pid ${pid} and finishes on its own (${words.steps}).\n` +
      `  follow it: ${follow}\n  result:    ${words.result}\n`;
    try {
      fs.appendFileSync(env.layout.opsLog, msg);
    } catch {
      /* the ops log is optional here */
    }
    try {
      process.stderr.write(msg);
    } catch {
      /* the terminal is gone (SIGHUP): nothing to write to */
    }
    process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGHUP' ? 129 : 143);
  };
  for (const [sig] of saved) {
    process.removeAllListeners(sig);
    process.on(sig, onSignal);
  }
  // a dead terminal makes writes fail with EPIPE: never let that kill us mid-follow
  process.stderr.on('error', () => {});
  process.stdout.on('error', () => {});
  try {
    let offset = 0;
    const pump = () => {
      let fd: number | undefined;
      try {
        fd = fs.openSync(logFile, 'r');
        const size = fs.fstatSync(fd).size;
        if (size > offset) {
          const buf = Buffer.alloc(size - offset);
          fs.readSync(fd, buf, 0, buf.length, offset);
          offset = size;
          try {
            process.stderr.write(buf);
          } catch {
            /* terminal gone */
          }
        }
      } finally {
        if (fd !== undefined) fs.closeSync(fd);
      }
    };
    while (!exited) {
      pump();
      await sleep(100);
    }
    pump();
  } finally {
    for (const [sig, ls] of saved) {
      process.removeAllListeners(sig);
      for (const l of ls) process.on(sig, l as (...a: unknown[]) => void);
    }
  }
  const done = exited as unknown as { code: number | null; signal: NodeJS.Signals | null };
  let outcome: WorkerOutcome<WorkerValue<J>> | null = null;
  try {
    outcome = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as WorkerOutcome<WorkerValue<J>>;
  } catch {
    /* the worker died without a result */
  }
  fs.rmSync(payloadFile, { force: true });
  fs.rmSync(resultFile, { force: true });
  if (!outcome) {
    throw new StepError(`the ${words.noun} worker (pid ${pid}) ended without a result (${done.signal ? `signal ${done.signal}` : `exit ${done.code}`})`, {
      step: words.noun,
      hint: `see ${logFile}; the recovery timer (or: node scripts/recover.mts --config ${env.file}) finishes what it left`,
    });
  }
  if (!outcome.ok) throw workerError(outcome.error);
  return outcome.value;
}

// ---------------------------------------------------------------------------------------------
// bounds: one critical-<id>.log per operation, pruned to the newest N when the next one starts

/** how many critical-<id>.log files are kept (the newest; the ops log keeps the one-line history of every operation) */
export const CRITICAL_LOGS_KEPT = 20;

/** Pure: which critical logs to delete, given their names and modification times: all but the newest `keep`. */
export function criticalLogsToPrune(files: { name: string; mtimeMs: number }[], keep: number): string[] {
  return files
    .filter((f) => /^critical-.+\.log$/.test(f.name))
    .sort((a, b) => b.mtimeMs - a.mtimeMs || b.name.localeCompare(a.name))
    .slice(Math.max(0, keep))
    .map((f) => f.name);
}

/**
 * STATE_DIR/run/ holds one worker's payload and result while it runs; a worker killed with its parent
 * leaves both. The caller holds the operation lock, so no worker of ours runs: what is there is left
 * over (recovery has finished the operation from the journal, not from these). Returns the names removed.
 */
export function clearRunDir(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const gone = names.filter((n) => /\.json$/.test(n));
  for (const n of gone) fs.rmSync(path.join(dir, n), { force: true });
  return gone;
}

/** Delete all but the newest `keep` critical logs in `dir` (never anything else); returns the names removed. */
export function pruneCriticalLogs(dir: string, keep: number): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const files = names.flatMap((name) => {
    try {
      const st = fs.statSync(path.join(dir, name));
      return st.isFile() ? [{ name, mtimeMs: st.mtimeMs }] : [];
    } catch {
      return [];
    }
  });
  const gone = criticalLogsToPrune(files, keep);
  for (const n of gone) fs.rmSync(path.join(dir, n), { force: true });
  return gone;
}
