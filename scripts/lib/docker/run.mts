// Running docker commands built by commands/. The one place that shells out to `docker`.
import { $ } from 'zx';
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';

/** run `docker <args>` quietly; throws zx's ProcessOutput on a non-zero exit unless nothrow */
export async function docker(args: string[], opts: { nothrow?: boolean; env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const p = $({ quiet: true, nothrow: opts.nothrow ?? false, env: opts.env ?? process.env, input: opts.input })`docker ${args}`;
  return p;
}

/** the running `docker <args>` process, to read its stdout while it runs (never throws on exit) */
export function dockerProcess(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  return $({ quiet: true, nothrow: true, env: opts.env ?? process.env })`docker ${args}`;
}

/** run `docker <args>` on this terminal (stdin, stdout and stderr are the operator's); resolves with its exit status */
export function dockerInteractive(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { stdio: 'inherit', env: opts.env ?? process.env });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
  });
}
