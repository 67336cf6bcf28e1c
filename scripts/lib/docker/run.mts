// Running docker commands built by commands/. The one place that shells out to `docker`.
// Every invocation is announced to the recorders first (Kamal's test/cli records its commands the same
// way): a test asserts exactly which commands an operation ran, in-process (recordDocker) or across
// the processes a script starts (LAZYFLOW_RECORD_DOCKER=<file>: one JSON line per command). argv
// never carries a secret (scripts/lib/README.md), so a record never does either.
import fs from 'node:fs';
import { $ } from 'zx';
import { spawn, spawnSync } from 'node:child_process';
import { constants as osConstants } from 'node:os';

/** one docker invocation as a recorder sees it */
export interface DockerCall {
  argv: string[];
  pid: number;
}

const recorders = new Set<(c: DockerCall) => void>();

/** the environment variable naming a file every docker invocation is appended to (tests only) */
export const RECORD_ENV = 'LAZYFLOW_RECORD_DOCKER';

function announce(args: readonly string[]): void {
  const call: DockerCall = { argv: [...args], pid: process.pid };
  for (const r of recorders) r(call);
  const file = process.env[RECORD_ENV];
  if (file) fs.appendFileSync(file, `${JSON.stringify(call)}\n`, { mode: 0o600 });
}

/** Record every docker invocation of this process until stop() (tests). */
export function recordDocker(): { calls: DockerCall[]; stop(): void } {
  const calls: DockerCall[] = [];
  const r = (c: DockerCall) => void calls.push(c);
  recorders.add(r);
  return { calls, stop: () => void recorders.delete(r) };
}

/** What LAZYFLOW_RECORD_DOCKER collected, in order (tests). */
export function readDockerRecord(file: string): DockerCall[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as DockerCall);
}

/** run `docker <args>` quietly; throws zx's ProcessOutput on a non-zero exit unless nothrow */
export async function docker(args: string[], opts: { nothrow?: boolean; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}) {
  announce(args);
  const p = $({ quiet: true, nothrow: opts.nothrow ?? false, env: opts.env ?? process.env, input: opts.input, timeout: opts.timeoutMs, cwd: opts.cwd })`docker ${args}`;
  return p;
}

/** the running `docker <args>` process, to read its stdout while it runs (never throws on exit) */
export function dockerProcess(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  announce(args);
  return $({ quiet: true, nothrow: true, env: opts.env ?? process.env, cwd: opts.cwd })`docker ${args}`;
}

/** run `docker <args>` on this terminal (stdin, stdout and stderr are the operator's); resolves with its exit status */
export function dockerInteractive(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  announce(args);
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { stdio: 'inherit', env: opts.env ?? process.env });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
  });
}

/** run `docker <args>` synchronously, output ignored: only for a teardown from process.on('exit'), where nothing async runs */
export function dockerSync(args: string[]): number | null {
  announce(args);
  return spawnSync('docker', args, { stdio: 'ignore' }).status;
}
