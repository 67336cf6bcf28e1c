// Which docker commands an operation ran (Kamal's test/cli style): the toolkit's one runner
// (scripts/lib/docker/run.mts) appends every argv to LAZYFLOW_RECORD_DOCKER, across the script and its
// detached worker. Tests compare what they recorded with the toolkit's own builders.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDockerRecord, RECORD_ENV } from '../../scripts/lib/docker/run.mts';
import { APP_SERVICE, appStopArgs, appUpArgs, composeCtx } from '../../scripts/lib/commands/compose.mts';
import { loadOpsEnv } from '../../scripts/lib/config/env.mts';

export function dockerRecorder(): { env: Record<string, string>; argvs(): string[][]; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'lzf-docker-rec-'));
  const file = join(dir, 'docker.jsonl');
  return {
    env: { [RECORD_ENV]: file },
    argvs: () => readDockerRecord(file).map((c) => c.argv),
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const LIFECYCLE = new Set(['stop', 'start', 'restart', 'up', 'create', 'kill', 'rm', 'down']);

/** the compose subcommand of an argv built by composeArgs (global flags and their values skipped) */
function composeSub(argv: string[]): { sub: string; rest: string[] } | null {
  if (argv[0] !== 'compose') return null;
  let i = 1;
  while (i < argv.length && argv[i].startsWith('-')) i += 2;
  return { sub: argv[i], rest: argv.slice(i + 1) };
}

/**
 * Every command that stopped, started or (re)created the app: compose lifecycle subcommands naming the
 * app service (or none: the whole stack), and plain `docker stop/start/kill/restart` (by container id). Removing a container that never ran is neither.
 */
export function appLifecycle(argvs: string[][]): string[][] {
  return argvs.filter((a) => {
    const c = composeSub(a);
    if (c) return LIFECYCLE.has(c.sub) && (c.rest.at(-1) === APP_SERVICE || !c.rest.some((x) => !x.startsWith('-')));
    // by id: the toolkit names an app container by its full id (docker ps --no-trunc); the contract
    // sandbox and the drill name their own throwaway containers
    return ['stop', 'start', 'kill', 'restart'].includes(a[0]) && a.some((x) => /^[0-9a-f]{64}$/.test(x));
  });
}

/** the one stop and the one start, as the toolkit builds them for this env file */
export function oneStopOneStart(envFile: string, o: { stopTimeoutS?: number } = {}): { stop: string[]; start: string[] } {
  const ctx = composeCtx(loadOpsEnv(envFile));
  return { stop: appStopArgs(ctx, { timeoutS: o.stopTimeoutS }), start: appUpArgs(ctx) };
}

/** the argvs that are none of `allowed` (element by element) */
export function noneOf(argvs: string[][], ...allowed: string[][]): string[][] {
  const key = (a: string[]) => JSON.stringify(a);
  const ok = new Set(allowed.map(key));
  return argvs.filter((a) => !ok.has(key(a)));
}
