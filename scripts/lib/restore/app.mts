// The restore's two actions on the app container: stop it, and start it again (on the image it ran)
// and wait until healthy. Both are the one stop and the one start (docker/app-lifecycle.mts), as for
// the swap, rollback and recovery; which app container runs, its health, the wait and what to print
// when it is not healthy are the one module's: docker/app-container.mts.
import { StepError, errorMessage } from '../cli/errors.mts';
import type { Logger } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import { liveApp, waitHealthy } from '../docker/app-container.mts';
import { startApp as startAppContainer, stopApp as stopAppContainer } from '../docker/app-lifecycle.mts';
import type { RestoreJournal } from './journal.mts';

export async function stopApp(ctx: OpsEnv, log: Logger) {
  const step = log.step('stop the app (Caddy holds incoming requests)');
  try {
    await stopAppContainer(ctx, log, 'restore', { step: 'restore' });
  } catch (err) {
    step.fail(errorMessage(err));
    throw err;
  }
  step.done();
}

/** start the app on the image it ran (or the one given), recreating its container if needed; wait until healthy */
export async function startApp(ctx: OpsEnv, log: Logger, j: RestoreJournal, appTag: string | undefined, timeoutMs: number, on: 'restored' | 'old' = 'restored') {
  const step = log.step('start the app and wait until healthy');
  const before = await liveApp(ctx);
  const fromJournal = j.appImage && j.appImage.includes(':') ? j.appImage.slice(j.appImage.lastIndexOf(':') + 1) : undefined;
  // the tag the app ran before the restore: compose then starts that container as it is
  const tag = appTag ?? before?.tag ?? fromJournal ?? null;
  try {
    await startAppContainer(ctx, tag, log, { step: 'restore', timeoutMs: timeoutMs + 30_000 });
  } catch (err) {
    step.fail(errorMessage(err));
    throw new StepError(`starting the app failed: ${errorMessage(err)}`, { step: 'restore' });
  }
  try {
    const { c } = await waitHealthy(ctx, timeoutMs, log, { what: on === 'old' ? 'the app on the kept-aside (previous) state' : 'the app on the restored data', step: 'restore' });
    step.done(`${c.State.Status}/${c.State.Health?.Status ?? 'no healthcheck'}`);
  } catch (err) {
    step.fail(errorMessage(err));
    throw err;
  }
}
