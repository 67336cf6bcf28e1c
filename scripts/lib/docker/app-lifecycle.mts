// The one way to stop the app and the one way to start it. The swap, restore, `rollback --with-db` and
// recovery all call these two (test/e2e/rollout.test.ts records the commands each ran and compares):
// - stop: through the drain (docker/drain.mts: Caddy routes around an app without a readiness path
//   first), `compose stop app` (graceful, stop_grace_period), then any app container compose did not
//   see (one renamed mid-recreate) stopped by id. Afterwards no app container runs, or it throws.
// - start: `compose up -d --no-deps --no-build --pull never app` with APP_TAG, after the app's own env
//   file is written (a new container reads it). Waiting until healthy is the caller's
//   (docker/app-container.mts waitHealthy), as each names the container its own way in errors.
// The default swap stops the old container inside the one `compose up` (Compose creates the new one,
// then stops and removes the old one): that implicit stop runs inside the same drain (startAppDrained).
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { GateError, StepError } from '../cli/errors.mts';
import { syncAppEnvFile } from '../config/app-env.mts';
import { appStopArgs, appUpArgs, composeCtx, composeEnvFor } from '../commands/compose.mts';
import { stopContainersArgs } from '../commands/docker.mts';
import { appContainers, appDiagnostics } from './app-container.mts';
import { withDrain } from './drain.mts';
import { docker } from './run.mts';

/** a compose call never hangs an operation: its own bound on top of the stop grace period */
const COMPOSE_TIMEOUT_MS = 120_000;

const lastLines = (out: { stderr: string; stdout: string }) => (out.stderr || out.stdout).trim().split('\n').slice(-3).join(' | ');

/** stop the app without the drain: only inside a drain someone else holds (withDrain's callback) */
async function stopNow(env: OpsEnv, o: { timeoutS?: number; step: string }): Promise<void> {
  const r = await docker(appStopArgs(composeCtx(env), { timeoutS: o.timeoutS }), { nothrow: true, env: composeEnvFor(env, null), timeoutMs: COMPOSE_TIMEOUT_MS });
  // whatever compose did not see (a container renamed mid-recreate, a project compose cannot read) is stopped by id
  const still = (await appContainers(env)).filter((c) => c.State.Running).map((c) => c.Id);
  if (!still.length) return;
  const byId = await docker(stopContainersArgs(still, { timeoutS: o.timeoutS }), { nothrow: true, timeoutMs: COMPOSE_TIMEOUT_MS });
  if (byId.exitCode !== 0) {
    throw new StepError(`stopping the app failed: docker compose stop app: ${r.exitCode === 0 ? 'ok' : lastLines(r)}; docker stop ${still.map((i) => i.slice(0, 12)).join(' ')}: ${lastLines(byId)}`, {
      step: o.step, hint: 'see: docker ps --filter label=com.docker.compose.service=app',
    });
  }
}

/**
 * Stop the app: drained first when the app cannot say so itself, graceful, and every app container
 * of the project stopped when it returns. `what` names the operation in the drain flag.
 */
export async function stopApp(env: OpsEnv, log: Pick<Logger, 'info'>, what: string, o: { timeoutS?: number; step?: string } = {}): Promise<void> {
  await withDrain(env, log, what, () => stopNow(env, { timeoutS: o.timeoutS, step: o.step ?? 'stop' }));
}

/** Start the app on `appTag` (null: the env file's APP_TAG); throws a GateError with the container's diagnostics when compose fails. */
export async function startApp(env: OpsEnv, appTag: string | null, log: Pick<Logger, 'debug'>, o: { step?: string; timeoutMs?: number } = {}): Promise<void> {
  syncAppEnvFile(env, log); // a new container reads the app's own keys
  const r = await docker(appUpArgs(composeCtx(env)), { nothrow: true, env: composeEnvFor(env, appTag), timeoutMs: o.timeoutMs ?? COMPOSE_TIMEOUT_MS });
  if (r.exitCode !== 0) {
    throw new GateError(`docker compose up app (APP_TAG=${appTag ?? env.values.APP_TAG ?? '?'}) failed: ${lastLines(r)}`, { step: o.step ?? 'start', diagnostics: await appDiagnostics(env) });
  }
}

/**
 * The default swap: the same start, with the old container's stop (Compose's, inside `up`) drained
 * like every other stop.
 */
export async function startAppDrained(env: OpsEnv, appTag: string, log: Pick<Logger, 'info' | 'debug'>, what: string, o: { step?: string } = {}): Promise<void> {
  await withDrain(env, log, what, () => startApp(env, appTag, log, o));
}
