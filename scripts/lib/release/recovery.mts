// Every operation runs recovery first (under its lock): what a killed process left unfinished is
// decided by recovery/decide.mts and executed by recovery/run.mts, the same code recover.mts runs.
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { StepError } from '../cli/errors.mts';
import { runRecovery } from '../recovery/run.mts';
import type { GateOptions } from './gates.mts';

export async function recoverUnfinished(env: OpsEnv, log: Logger, gates: GateOptions, _operator: string): Promise<void> {
  const r = await runRecovery(env, log, { healthTimeoutS: gates.healthTimeoutS, stopTimeoutS: gates.stopTimeoutS });
  if (r.exitCode !== 0) {
    throw new StepError(`recovering what an interrupted operation left failed: ${r.error ?? 'see above'}`, { step: 'recovery', hint: r.next ?? `node scripts/recover.mts --config ${env.file} --dry-run` });
  }
}
