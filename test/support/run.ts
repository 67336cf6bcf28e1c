// Runs a command and collects its output, never throwing on a non-zero exit: tests assert on
// exit codes and messages, which is what an operator sees.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

export type RunResult = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number };

export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    // A child that exits (or is killed) before reading its input closes the pipe: not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

export async function mustRun(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/** Runs one of the toolkit's scripts the way an operator does (Node >= 22.18, native TypeScript). */
export function runScript(script: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  return run(process.execPath, [resolve(repoRoot, 'scripts', script), ...args], opts);
}
