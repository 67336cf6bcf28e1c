// `docker compose` commands as data (Kamal style): pure functions return argument arrays, so tests
// compare arrays and zx quotes each element when running them:
//   await $`docker ${composeArgs(ctx, 'ps', '--format', 'json')}`
// Nothing here runs anything: docker/ does.
import type { OpsEnv } from '../config/env.mts';
import { pollingBot } from '../config/shape.mts';

export interface ComposeContext {
  projectDir: string;
  envFile: string;
  project: string;
  /** -f files; empty = compose's default (docker-compose.yml in projectDir) */
  composeFiles?: string[];
  /** STATE_DIR/probes.env (contract/probes.mts): read before envFile, so a key set there wins */
  probesEnvFile?: string;
}

export const APP_SERVICE = 'app';

export function composeArgs(ctx: ComposeContext, ...sub: (string | number)[]): string[] {
  const files = (ctx.composeFiles ?? []).flatMap((f) => ['-f', f]);
  return [
    'compose',
    '--project-directory',
    ctx.projectDir,
    ...(ctx.probesEnvFile ? ['--env-file', ctx.probesEnvFile] : []),
    '--env-file',
    ctx.envFile,
    '-p',
    ctx.project,
    ...files,
    ...sub.map(String),
  ];
}

export function psArgs(ctx: ComposeContext, opts: { all?: boolean; service?: string } = {}): string[] {
  return composeArgs(ctx, 'ps', ...(opts.all ? ['--all'] : []), '--format', 'json', ...(opts.service ? [opts.service] : []));
}

export function logsArgs(
  ctx: ComposeContext,
  opts: { service?: string; tail?: number; since?: string; timestamps?: boolean; noLogPrefix?: boolean; follow?: boolean } = {},
): string[] {
  return composeArgs(
    ctx,
    'logs',
    '--no-color',
    ...(opts.noLogPrefix ? ['--no-log-prefix'] : []),
    ...(opts.follow ? ['--follow'] : []),
    ...(opts.timestamps ? ['--timestamps'] : []),
    ...(opts.tail !== undefined ? ['--tail', String(opts.tail)] : []),
    ...(opts.since ? ['--since', opts.since] : []),
    ...(opts.service ? [opts.service] : []),
  );
}

export function imagesArgs(ctx: ComposeContext, opts: { service?: string } = {}): string[] {
  return composeArgs(ctx, 'images', '--format', 'json', ...(opts.service ? [opts.service] : []));
}

/** container ids of a service (`ps -q`); with all, also stopped ones */
export function psQuietArgs(ctx: ComposeContext, opts: { service?: string; all?: boolean } = {}): string[] {
  return composeArgs(ctx, 'ps', ...(opts.all ? ['--all'] : []), '-q', opts.service ?? APP_SERVICE);
}

export interface ComposePsEntry {
  ID: string;
  Name: string;
  Service: string;
  State: string;
  Health: string;
  Image: string;
  [k: string]: unknown;
}

/** `compose ps --format json` prints one object per line (v2.21+) or one array (older v2) */
export function parseComposePs(text: string): ComposePsEntry[] {
  const t = text.trim();
  if (!t) return [];
  if (t.startsWith('[')) return JSON.parse(t) as ComposePsEntry[];
  return t
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as ComposePsEntry);
}

/**
 * Environment for running compose: the shell environment minus the keys the env file defines, so the
 * env file wins over a stray exported variable (compose itself lets the shell win for interpolation).
 */
export function composeEnv(values: Record<string, string>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of Object.keys(values)) delete env[k];
  return env;
}

export function composeCtx(env: OpsEnv): ComposeContext {
  return { projectDir: env.projectDir, envFile: env.envFile, project: env.project, composeFiles: env.composeFiles, ...(env.probesEnvFile ? { probesEnvFile: env.probesEnvFile } : {}) };
}

/** Env for compose with the release tag: the shell value of APP_TAG wins over the env file's. */
export function composeEnvFor(env: OpsEnv, appTag: string | null): NodeJS.ProcessEnv {
  const e = composeEnv(env.values);
  if (appTag) e.APP_TAG = appTag;
  return e;
}

/**
 * The one stop of the app (docker/app-lifecycle.mts runs it, through the drain): graceful, within
 * the compose file's stop_grace_period unless an operator's --stop-timeout says otherwise.
 */
export function appStopArgs(ctx: ComposeContext, opts: { timeoutS?: number } = {}): string[] {
  return composeArgs(ctx, 'stop', ...(opts.timeoutS !== undefined ? ['-t', String(opts.timeoutS)] : []), APP_SERVICE);
}

/**
 * The one start of the app, with APP_TAG in compose's environment (composeEnvFor): the swap, restore,
 * rollback and recovery all use it. Compose starts the existing container when its configuration is
 * unchanged and recreates it on the image otherwise; never a build or a pull (the image is local), never
 * another service (the proxy has its own start).
 */
export function appUpArgs(ctx: ComposeContext): string[] {
  return composeArgs(ctx, 'up', '-d', '--no-deps', '--no-build', '--pull', 'never', APP_SERVICE);
}

/** the proxy alone, when it is down (recovery) */
export function proxyUpArgs(ctx: ComposeContext): string[] {
  return composeArgs(ctx, 'up', '-d', '--no-deps', '--no-build', '--pull', 'never', 'caddy');
}

/**
 * The swap as data: stop the old app container gracefully, then start the new image (no deps, no build,
 * no pull). upAll, the first deploy: the whole stack; for a polling bot (bot shape polling, no ingress)
 * the app alone: no Caddy, no proxy image, no published port.
 */
export function swapCommands(env: OpsEnv, opts: { stopTimeoutS?: number } = {}) {
  const ctx = composeCtx(env);
  return {
    stop: appStopArgs(ctx, { timeoutS: opts.stopTimeoutS }),
    up: appUpArgs(ctx),
    upAll: composeArgs(ctx, 'up', '-d', '--no-build', '--pull', 'never', '--wait', ...(pollingBot(env.values) ? [APP_SERVICE] : [])),
  };
}

/**
 * A command in the running container of a service (`compose exec`): -T without a terminal (a pipe, a
 * script, a test), so compose does not ask for one; the container's own user and environment.
 */
export function execArgs(ctx: ComposeContext, command: readonly string[], opts: { service?: string; tty?: boolean } = {}): string[] {
  if (command.length === 0) throw new Error('execArgs: empty command');
  return composeArgs(ctx, 'exec', ...(opts.tty ? [] : ['-T']), opts.service ?? APP_SERVICE, ...command);
}
