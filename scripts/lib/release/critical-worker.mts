// Entry of the detached critical-section worker (see critical.mts). It ignores the terminal's
// signals (it has no terminal; a signal sent to the old process group by pid would still arrive),
// runs the critical section, writes the result for the parent and releases the handed-over lock.
import fs from 'node:fs';
import { loadOpsEnv } from '../config/env.mts';
import { createLogger } from '../cli/log.mts';
import { errorMessage } from '../cli/errors.mts';
import { readLock } from '../host/lock.mts';
import { criticalSection } from './rollout.mts';
import type { WorkerPayload } from './critical.mts';

for (const sig of ['SIGHUP', 'SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.stderr.write(`worker: ignoring ${sig}: the swap finishes first\n`));

const payload = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as WorkerPayload;
const env = loadOpsEnv(payload.envFile);
const log = createLogger({ op: 'rollout' });
log.setOpsLog(env.layout.opsLog);
let code = 1;
try {
  const res = await criticalSection(env, log, payload.ctx);
  code = res.exitCode;
  const tmp = `${payload.resultFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(res), { mode: 0o600 });
  fs.renameSync(tmp, payload.resultFile);
} catch (err) {
  log.error(`the critical section failed unexpectedly: ${errorMessage(err)}`);
  if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
} finally {
  const lockFile = env.layout.lockFile;
  try {
    if (readLock(lockFile)?.token === payload.lockToken) fs.unlinkSync(lockFile);
  } catch {
    /* already gone */
  }
}
process.exit(code);
