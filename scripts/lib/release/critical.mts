// The critical section of a rollout (stop old, start new, gates, automatic revert, record) runs in
// a worker spawned detached: its own session and process group (setsid), no controlling terminal,
// stdio to STATE_DIR/logs/critical-<id>.log. SIGHUP from a dropped SSH session, Ctrl-C or SIGTERM to
// the operator's process group reach only this parent, which then says plainly that the swap
// continues in pid N and how to follow it. The operation lock is handed to the worker (pid and a new
// token), so no other operation or recovery starts while it runs; the worker releases it.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { StepError } from '../cli/errors.mts';
import { processStartTime, readLock, type LockHandle, type LockInfo } from '../host/lock.mts';
import type { CriticalContext, OpResult } from './rollout.mts';

export const WORKER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'critical-worker.mts');

export interface WorkerPayload {
  envFile: string;
  ctx: CriticalContext;
  /** the lock token the worker owns after the handover */
  lockToken: string;
  resultFile: string;
}

export const runDir = (env: OpsEnv) => path.join(env.layout.root, 'run');
export const criticalLog = (env: OpsEnv, id: string) => path.join(env.layout.logs, `critical-${id}.log`);

/** Rewrite the lock for the worker: same operation, the worker's pid, a new token (atomic rename). */
function handOverLock(lock: LockHandle, pid: number, token: string): void {
  const cur = readLock(lock.path);
  if (!cur || cur.token !== lock.info.token) throw new StepError(`the operation lock ${lock.path} is no longer ours: cannot hand it to the worker`, { step: 'swap' });
  const next: LockInfo = { ...cur, pid, pidStart: processStartTime(pid), token };
  const tmp = `${lock.path}.handover-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(next) + '\n', { mode: 0o644 });
  fs.renameSync(tmp, lock.path);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runDetached(env: OpsEnv, log: Logger, lock: LockHandle, ctx: CriticalContext): Promise<OpResult> {
  fs.mkdirSync(runDir(env), { recursive: true, mode: 0o700 });
  fs.mkdirSync(env.layout.logs, { recursive: true });
  const logFile = criticalLog(env, ctx.id);
  const payloadFile = path.join(runDir(env), `${ctx.id}.json`);
  const resultFile = path.join(runDir(env), `${ctx.id}.result.json`);
  const token = randomBytes(8).toString('hex');
  const payload: WorkerPayload = { envFile: path.resolve(env.file), ctx, lockToken: token, resultFile };
  fs.writeFileSync(payloadFile, JSON.stringify(payload), { mode: 0o600 });
  fs.rmSync(resultFile, { force: true });
  const out = fs.openSync(logFile, 'a', 0o640);
  const child = spawn(process.execPath, [WORKER_SCRIPT, payloadFile], {
    detached: true, // setsid(): own session and process group, no controlling terminal
    stdio: ['ignore', out, out],
    cwd: env.projectDir,
    env: { ...process.env, NO_COLOR: '1' },
  });
  fs.closeSync(out);
  const pid = child.pid;
  if (!pid) throw new StepError('could not start the swap worker', { step: 'swap' });
  handOverLock(lock, pid, token);
  const follow = `tail -f ${logFile}`;
  log.info(`the swap runs in pid ${pid} (its own session: closing this terminal does not stop it); log: ${logFile}`);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  // operator's signals: say where the swap continues, then leave it to the worker
  const saved = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, process.listeners(sig)] as const);
  const onSignal = (sig: NodeJS.Signals) => {
    const msg = `\n${sig}: this terminal stops following, but the swap of ${ctx.id} continues in pid ${pid} and finishes on its own (stop old, start new, gates, or revert).\n` +
      `  follow it: ${follow}\n  result:    node scripts/rollback.mts --config ${env.file} --list\n`;
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
  let result: OpResult | null = null;
  try {
    result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as OpResult;
  } catch {
    /* the worker died without a result */
  }
  fs.rmSync(payloadFile, { force: true });
  fs.rmSync(resultFile, { force: true });
  if (!result) {
    throw new StepError(`the swap worker (pid ${pid}) ended without a result (${done.signal ? `signal ${done.signal}` : `exit ${done.code}`})`, {
      step: 'swap',
      hint: `see ${logFile}; the recovery timer (or: node scripts/recover.mts --config ${env.file}) finishes what it left`,
    });
  }
  return result;
}
