// An operator at a terminal, for tests and benchmarks: a command on a pseudo-terminal (util-linux
// `script`) whose questions are answered as a person types, and "GitHub": this working tree as a
// repository the VPS clones.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from './run.ts';

/**
 * `command` on a pseudo-terminal: each answer is typed only once its question ends the screen
 * (what is typed before would be echoed by the terminal, as for a person typing ahead).
 */
export function onTerminal(command: string, o: { cwd: string; env: Record<string, string | undefined>; answers: [RegExp, string][]; timeoutMs: number }) {
  return new Promise<{ code: number | null; screen: string }>((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let next = 0;
    const onOutput = (d: Buffer) => {
      screen += d.toString();
      while (next < o.answers.length && o.answers[next][0].test(screen.slice(screen.lastIndexOf('\n', screen.length - 2) + 1))) {
        child.stdin.write(`${o.answers[next][1]}\r`);
        next++;
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}

/** A clone of this repository at `dir` holding this working tree's files, committed: a clean checkout. */
export function workingTreeClone(dir: string): string {
  execFileSync('git', ['clone', '-q', repoRoot, dir]);
  const files = execFileSync('git', ['-C', repoRoot, 'ls-files', '-co', '--exclude-standard', '-z']).toString().split('\0').filter(Boolean);
  for (const f of files) {
    if (!existsSync(join(repoRoot, f))) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(join(repoRoot, f), join(dir, f));
  }
  execFileSync('bash', ['-c', 'git add -A && (git diff --cached --quiet || git -c user.name=t -c user.email=t@lazyflow.invalid commit -qm "this working tree")'], { cwd: dir });
  return dir;
}
