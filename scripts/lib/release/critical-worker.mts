// Entry of the detached critical-section worker (see critical.mts). It ignores the terminal's
// signals (it has no terminal; a signal sent to the old process group by pid would still arrive),
// runs the critical section, writes its outcome (value or error) for the parent and releases the
// handed-over lock.
import fs from 'node:fs';
import { loadOpsEnv } from '../config/env.mts';
import { createLogger } from '../cli/log.mts';
import { errorMessage, isToolkitError, EXIT_FAILED } from '../cli/errors.mts';
import { readLock } from '../host/lock.mts';
import { criticalSection } from './rollout.mts';
import { rollbackCritical } from './rollback.mts';
import { restoreCriticalNotified } from '../restore/restore.mts';
import { HANDOVER_WAIT_MS, describeJob, type WorkerOutcome, type WorkerPayload } from './critical.mts';
import { deadline } from '../host/deadline.mts';

const payload = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as WorkerPayload;
const env = loadOpsEnv(payload.envFile);
const job = payload.ctx;
const words = describeJob(env, job);
for (const sig of ['SIGHUP', 'SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.stderr.write(`worker: ignoring ${sig}: the ${words.noun} finishes first\n`));
// The parent hands the lock over right after spawning us. If it died before doing so, the lock is
// not ours and nothing stops another operation or recovery: do nothing (the journals show the
// operation as interrupted; recovery finishes or undoes it).
{
  const until = deadline(HANDOVER_WAIT_MS);
  while (readLock(env.layout.lockFile)?.token !== payload.lockToken) {
    if (until.passed()) {
      process.stderr.write(`worker: the operation lock was never handed to pid ${process.pid} (the parent died first?): not starting the ${words.noun}\n`);
      process.exit(EXIT_FAILED);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

// its output file is the critical log the parent follows by name: pruned, never rotated under it
const log = createLogger({ op: job.kind ?? 'rollout', rotateOutputLog: false });
log.setOpsLog(env.layout.opsLog);

function writeOutcome(o: WorkerOutcome) {
  const tmp = `${payload.resultFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(o), { mode: 0o600 });
  fs.renameSync(tmp, payload.resultFile);
}

let code = EXIT_FAILED;
try {
  if (job.kind === 'restore') {
    writeOutcome({ ok: true, value: await restoreCriticalNotified(env, log, job) });
    code = 0;
  } else {
    const res = job.kind === 'rollback' ? await rollbackCritical(env, log, job) : await criticalSection(env, log, job);
    code = res.exitCode;
    writeOutcome({ ok: true, value: res });
  }
} catch (err) {
  if (isToolkitError(err)) {
    // an expected failure (it says what and what next): in this log for whoever follows it, and
    // through the result for the parent, which exits with it as its own
    code = err.exitCode;
    log.error(`${err.message}${err.hint ? `\n  next: ${err.hint}` : ''}`);
    const step = (err as { step?: string }).step;
    writeOutcome({ ok: false, error: { message: err.message, hint: err.hint, exitCode: err.exitCode, ...(step ? { step } : {}) } });
  } else {
    log.error(`the ${words.noun} failed unexpectedly: ${errorMessage(err)}`);
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    writeOutcome({ ok: false, error: { message: `the ${words.noun} failed unexpectedly: ${errorMessage(err)}`, exitCode: EXIT_FAILED } });
  }
} finally {
  const lockFile = env.layout.lockFile;
  try {
    if (readLock(lockFile)?.token === payload.lockToken) fs.unlinkSync(lockFile);
  } catch {
    /* already gone */
  }
}
process.exit(code);
