// A reboot, as far as the Docker engine goes: restartEngine() stops the dockerd that
// test/prepare-machine.sh started (by the pid and start time it recorded in
// $LAZYFLOW_CACHE/dockerd.pid, never a process found by name), waits until it has exited (its
// containers stop gracefully, as when systemd stops docker.service at a reboot), starts it again
// exactly as prepare-machine.sh does (one piece of shell for both: test/support/dockerd.sh) and
// waits until `docker info` answers. Containers with a restart policy come back as after a boot; a
// container stopped through the API or only Created does not. Nothing of the toolkit runs meanwhile:
// the caller kills what ran before and runs what the boot unit would (recovery's ExecStart) after.
//
// It stops EVERY container on this machine: a test that calls it runs only where nothing else uses
// the engine (CI: LAZYFLOW_E2E_REBOOT=1, set by .ci/run).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, run } from './run.ts';

export const CACHE = process.env.LAZYFLOW_CACHE || '/var/cache/lazyflow-ci';
export const DOCKERD_PIDFILE = join(CACHE, 'dockerd.pid');
const DOCKERD_SH = join(repoRoot, 'test', 'support', 'dockerd.sh');

/** start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null */
export function procStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * The dockerd prepare-machine.sh started, when its record still names it (same pid, same start time,
 * command line `dockerd`); else why not. A test that would restart the engine skips loudly without it.
 */
export function ownDockerd(): { pid: number } | { why: string } {
  let text: string;
  try {
    text = readFileSync(DOCKERD_PIDFILE, 'utf8');
  } catch {
    return { why: `no ${DOCKERD_PIDFILE}: this engine was not started by test/prepare-machine.sh` };
  }
  const [pidText, start] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 1 || !start) return { why: `${DOCKERD_PIDFILE} is not "<pid> <start ticks>": ${JSON.stringify(text)}` };
  const now = procStartTicks(pid);
  if (now === null) return { why: `dockerd pid ${pid} (${DOCKERD_PIDFILE}) does not run` };
  if (now !== start) return { why: `pid ${pid} started at tick ${now}, not ${start} as ${DOCKERD_PIDFILE} records: another process reuses it` };
  let cmd = '';
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch {
    /* gone meanwhile */
  }
  if (cmd !== 'dockerd') return { why: `pid ${pid} runs ${JSON.stringify(cmd)}, not dockerd` };
  return { pid };
}

export interface EngineRestart {
  /** the dockerd before and after */
  before: number;
  after: number;
  /** from the stop signal until `docker info` answered again */
  ms: number;
  output: string;
}

/** Stop and start the engine as a reboot does; resolves once `docker info` answers. */
export async function restartEngine(o: { timeoutMs?: number } = {}): Promise<EngineRestart> {
  const own = ownDockerd();
  if ('why' in own) throw new Error(`restartEngine: ${own.why}`);
  const started = Date.now();
  // its own session: the dockerd it starts must not belong to the test runner's process group (a
  // Ctrl-C or the end of this vitest worker would otherwise reach the engine)
  const child = spawn('bash', [DOCKERD_SH, 'restart'], { cwd: repoRoot, env: { ...process.env, LAZYFLOW_CACHE: CACHE }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timeoutMs = o.timeoutMs ?? 240_000;
  const code = await new Promise<number | null>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`restartEngine: dockerd.sh restart did not finish within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    child.on('error', reject);
    child.on('close', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  if (code !== 0) throw new Error(`restartEngine: dockerd.sh restart exited ${code}:\n${output}`);
  const info = await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 30_000 });
  if (info.code !== 0) throw new Error(`restartEngine: docker info does not answer after the restart: ${info.stderr}\n${output}`);
  const after = ownDockerd();
  if ('why' in after) throw new Error(`restartEngine: after the restart, ${after.why}\n${output}`);
  return { before: own.pid, after: after.pid, ms: Date.now() - started, output };
}
