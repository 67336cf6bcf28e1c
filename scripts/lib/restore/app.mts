// The app container as a restore sees it: is it there and running, stop it, start it again (or
// recreate it from the image it ran) and wait until healthy.
import { $ } from 'zx';
import { StepError } from '../cli/errors.mts';
import { formatDuration, type Logger } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import { composeEnv, parseComposePs, psArgs, startArgs, stopArgs, upArgs, logsArgs } from '../commands/compose.mts';
import type { RestoreJournal } from './journal.mts';
import { syncAppEnvFile } from '../config/app-env.mts';

export interface AppState {
  id: string | null;
  running: boolean;
  image: string | null;
}

export async function appState(ctx: OpsEnv): Promise<AppState> {
  const r = await $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 30_000 })`docker ${psArgs(ctx, { all: true, service: 'app' })}`;
  if (r.exitCode !== 0) throw new StepError(`docker compose ps failed: ${r.stderr.trim()}`, { step: 'restore', hint: 'is the Docker engine running? docker info' });
  const app = parseComposePs(r.stdout).find((e) => e.Service === 'app');
  if (!app) return { id: null, running: false, image: null };
  return { id: app.ID, running: app.State === 'running', image: app.Image ?? null };
}

export async function stopApp(ctx: OpsEnv, log: Logger) {
  const step = log.step('stop the app (Caddy holds incoming requests)');
  const r = await $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 120_000 })`docker ${stopArgs(ctx, { timeoutS: 30 })}`;
  if (r.exitCode !== 0) {
    step.fail(r.stderr.trim());
    throw new StepError(`docker compose stop app failed: ${r.stderr.trim()}`, { step: 'restore' });
  }
  step.done();
}

export async function containerHealth(id: string): Promise<{ status: string; health: string | null; exitCode: number }> {
  const r = await $({ quiet: true, nothrow: true, timeout: 20_000 })`docker inspect --format ${'{{json .State}}'} ${id}`;
  if (r.exitCode !== 0) return { status: 'missing', health: null, exitCode: -1 };
  const s = JSON.parse(r.stdout) as { Status: string; ExitCode: number; Health?: { Status: string } };
  return { status: s.Status, health: s.Health?.Status ?? null, exitCode: s.ExitCode };
}

async function appLogsTail(ctx: OpsEnv, lines = 20): Promise<string> {
  const r = await $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 20_000 })`docker ${logsArgs(ctx, { service: 'app', tail: lines })}`;
  return r.stdout.trim();
}

/** start the existing app container (same image and config), or recreate it; wait until healthy */
export async function startApp(ctx: OpsEnv, log: Logger, j: RestoreJournal, appTag: string | undefined, timeoutMs: number) {
  const step = log.step('start the app and wait until healthy');
  const before = await appState(ctx);
  let r;
  if (before.id) {
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
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const now = await appState(ctx);
    if (now.id) {
      const h = await containerHealth(now.id);
      last = `${h.status}${h.health ? `/${h.health}` : ''}`;
      if (h.status === 'running' && (h.health === 'healthy' || h.health === null)) break;
      if (h.status === 'exited' || h.status === 'dead') {
        step.fail(`container ${last} (exit code ${h.exitCode})`);
        throw new StepError(`the app exited on the restored data (exit code ${h.exitCode}):\n${await appLogsTail(ctx)}`, { step: 'restore' });
      }
    }
    if (Date.now() > deadline) {
      step.fail(`not healthy after ${formatDuration(timeoutMs)} (${last})`);
      throw new StepError(`the app did not become healthy within ${formatDuration(timeoutMs)} (${last}):\n${await appLogsTail(ctx)}`, { step: 'restore' });
    }
    await new Promise((res) => setTimeout(res, 500));
  }
  step.done(last);
}

