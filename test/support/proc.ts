// What `ps` would show while an operation runs: every process's command line, sampled from /proc
// every few milliseconds, so a test can assert that no secret ever reaches an argv (restic, docker,
// curl, our own scripts) and that the sampler really saw the operation's processes.
import { readdirSync, readFileSync } from 'node:fs';

export interface CmdlineSampler {
  /** stop sampling; the distinct command lines seen (arguments joined by spaces) */
  stop(): string[];
}

function snapshot(into: Set<string>): void {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      const raw = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      if (raw) into.add(raw.replace(/\0+$/, '').split('\0').join(' '));
    } catch {
      /* the process ended between readdir and read */
    }
  }
}

export function sampleCmdlines(everyMs = 20): CmdlineSampler {
  const seen = new Set<string>();
  snapshot(seen);
  const timer = setInterval(() => snapshot(seen), everyMs);
  return {
    stop() {
      clearInterval(timer);
      snapshot(seen);
      return [...seen];
    },
  };
}

/** the secrets (at least 6 characters) that appear in any of the command lines, by name */
export function secretsIn(cmdlines: string[], secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, v]) => v.trim().length >= 6)
    .filter(([, v]) => cmdlines.some((c) => c.includes(v.trim())))
    .map(([k]) => k);
}
