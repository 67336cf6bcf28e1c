// The restore's two actions on the app container: stop it, and start it again (or recreate it from
// the image it ran) and wait until healthy. Which app container runs, its health, the wait and what
// to print when it is not healthy are the one module's: docker/app-container.mts.
import { $ } from 'zx';
import { StepError, errorMessage } from '../cli/errors.mts';
import type { Logger } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import { composeEnv, startArgs, stopArgs, upArgs } from '../commands/compose.mts';
import { liveApp, waitHealthy } from '../docker/app-container.mts';
import { withDrain } from '../docker/drain.mts';
import type { RestoreJournal } from './journal.mts';
import { syncAppEnvFile } from '../config/app-env.mts';

export async function stopApp(ctx: OpsEnv, log: Logger) {
  const step = log.step('stop the app (Caddy holds incoming requests)');
  const r = await withDrain(ctx, log, 'restore', () => $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 120_000 })`docker ${stopArgs(ctx, { timeoutS: 30 })}`);
  if (r.exitCode !== 0) {
    step.fail(r.stderr.trim());
    throw new StepError(`docker compose stop app failed: ${r.stderr.trim()}`, { step: 'restore' });
  }
  step.done();
}

/** start the existing app container (same image and config), or recreate it; wait until healthy */
export async function startApp(ctx: OpsEnv, log: Logger, j: RestoreJournal, appTag: string | undefined, timeoutMs: number, on: 'restored' | 'old' = 'restored') {
  const step = log.step('start the app and wait until healthy');
  const before = await liveApp(ctx);
  let r;
  if (before) {
    r = await $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 120_000 })`docker ${startArgs(ctx)}`;
  } else {
    syncAppEnvFile(ctx, log); // a new container reads the app's own keys
    const env = composeEnv(ctx.values);
    const tag = appTag ?? (j.appImage && j.appImage.includes(':') ? j.appImage.slice(j.appImage.lastIndexOf(':') + 1) : undefined);
    if (tag) env.APP_TAG = tag;
    r = await $({ quiet: true, nothrow: true, env, timeout: timeoutMs + 30_000 })`docker ${upArgs(ctx, { noBuild: true, wait: false })}`;
  }
  if (r.exitCode !== 0) {
    step.fail(r.stderr.trim());
    throw new StepError(`starting the app failed: ${r.stderr.trim()}`, { step: 'restore' });
  }
  try {
    const { c } = await waitHealthy(ctx, timeoutMs, log, { what: on === 'old' ? 'the app on the kept-aside (previous) state' : 'the app on the restored data', step: 'restore' });
    step.done(`${c.State.Status}/${c.State.Health?.Status ?? 'no healthcheck'}`);
  } catch (err) {
    step.fail(errorMessage(err));
    throw err;
  }
}
