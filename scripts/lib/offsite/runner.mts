// Runs restic commands built by commands/restic.mts. Credentials go in the environment only; the
// argv that `ps` shows carries repository-independent flags, paths and tags. Exit codes are mapped
// to toolkit errors: 12 (wrong password) is a config error (exit 2), everything that is not 0 is a
// failure, with restic's own error in one line; a run that exceeds OFFSITE_TIMEOUT is interrupted
// (SIGINT first, so restic removes its lock) and is a failure too.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { ConfigError, StepError } from '../cli/errors.mts';
import { RESTIC_EXIT, resticEnv } from '../commands/restic.mts';
import type { OffsiteConfig } from './config.mts';

export interface ResticRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface RunResticOptions {
  timeoutMs?: number;
  cwd?: string;
  /** called with each stdout line (restic --json prints one object per line) */
  onLine?: (line: string) => void;
}

export function runRestic(cfg: OffsiteConfig, args: string[], opts: RunResticOptions = {}): Promise<ResticRun> {
  const started = performance.now();
  mkdirSync(cfg.target.cacheDir, { recursive: true, mode: 0o700 });
  return new Promise((res, rej) => {
    const child = spawn(cfg.restic, args, { env: resticEnv(cfg.target), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => {
      const s = d.toString();
      stdout += s;
      if (opts.onLine) {
        const lines = (partial + s).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) opts.onLine(l);
      }
      // restic's --json status lines can be many; keep only the tail in memory
      if (stdout.length > 4 * 2 ** 20) stdout = stdout.slice(-(2 * 2 ** 20));
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 2 ** 20) stderr = stderr.slice(-(2 ** 19));
    });
    const timeoutMs = opts.timeoutMs ?? cfg.timeoutMs;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGINT');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    }, timeoutMs);
    // our own interruption (Ctrl-C, SIGTERM, SIGHUP) reaches restic through the process group
    child.on('error', (err) => {
      clearTimeout(timer);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        rej(new StepError(`restic not found (${cfg.restic})`, { step: 'offsite', hint: 'install restic >= 0.17 (RUNBOOK: VPS preparation), or set OFFSITE_RESTIC=/path/to/restic in the env file' }));
      } else rej(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      res({ code, signal, stdout, stderr, timedOut, ms: performance.now() - started });
    });
  });
}

/** restic's closing lines that only count what went wrong above them */
const SUMMARY_FATAL = /^Fatal: (there were \d+ errors?|repository contains errors)\.?$/i;
const ERRORISH = /error|failed|refused|denied|timeout|no such|unable|cannot|wrong/i;

/**
 * The one line of restic's stderr that says what went wrong: its Fatal line, or the last error. A
 * Fatal line that only counts ("There were 2 errors", "repository contains errors") gets the first
 * error it counts appended, which names the damage ("... ciphertext verification failed"); restic's
 * 64-hex ids are shortened to its 8-character short ids so the line stays one readable line. A run
 * we interrupted (OFFSITE_TIMEOUT) ends with restic's "context canceled": the cause is the last error
 * it reported while retrying (the backend's own, e.g. "connection refused"), so that line is taken.
 */
export function resticErrorLine(stderr: string, secrets: string[] = [], opts: { interrupted?: boolean } = {}): string {
  // with --json, restic reports its fatal error as {"message_type":"exit_error","message":"Fatal: ..."}
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .flatMap((l) => {
      if (!l.startsWith('{')) return [l];
      try {
        const j = JSON.parse(l) as { message_type?: string; message?: string; error?: { message?: string } | string };
        const msg = j.message ?? (typeof j.error === 'string' ? j.error : j.error?.message);
        return msg ? [msg.split('\n')[0]] : [];
      } catch {
        return [l];
      }
    });
  const fatal = lines.find((l) => /^Fatal:/.test(l));
  const first = lines.find((l) => !/^Fatal:/.test(l) && ERRORISH.test(l));
  const last = [...lines].reverse().find((l) => !/^Fatal:/.test(l) && ERRORISH.test(l));
  const pick =
    (opts.interrupted ? last : undefined) ??
    (fatal && SUMMARY_FATAL.test(fatal) && first ? `${fatal}: ${first}` : fatal) ??
    last ??
    lines[lines.length - 1] ??
    '';
  const line = pick
    .replace(/^Fatal:\s*/, '')
    .replace(/ returned error, retrying after [\d.hmsµn]+: /, ' failed: ')
    // Go's url.Error ('Head "http://user:***@host/repo/config": dial tcp ...'): the repository is named already
    .replace(/\b(Get|Head|Post|Put|Delete) "[a-z]+:\/\/[^"]*": /g, '')
    .replace(/\b([0-9a-f]{8})[0-9a-f]{56}\b/g, '$1');
  return redact(line, secrets).slice(0, 400);
}

export function redact(s: string, secrets: string[]): string {
  let out = s;
  for (const x of secrets) if (x && x.length >= 4) out = out.split(x).join('***');
  return out;
}

export function configSecrets(cfg: OffsiteConfig): string[] {
  return Object.entries(cfg.target.credentials).filter(([k]) => /SECRET|PASSWORD/.test(k)).map(([, v]) => v);
}

/**
 * Throw the toolkit error for a restic run that did not succeed. `what` names the operation
 * ("upload of backup X"); `next` is the command that retries it.
 */
export function resticFailure(cfg: OffsiteConfig, r: ResticRun, what: string, next: string, file = '<env file>'): ConfigError | StepError {
  const line = resticErrorLine(r.stderr, configSecrets(cfg), { interrupted: r.timedOut });
  const where = `${cfg.backend} repository ${redact(cfg.target.repository, configSecrets(cfg))}`;
  if (r.timedOut) {
    return new StepError(`${what} failed: no result from the ${where} within ${Math.round(cfg.timeoutMs / 1000)} s (OFFSITE_TIMEOUT)${line ? `: ${line}` : ''}`, { step: 'offsite', hint: next });
  }
  switch (r.code) {
    case RESTIC_EXIT.wrongPassword:
      return new ConfigError(`the password in OFFSITE_PASSWORD_FILE (${cfg.target.passwordFile}) does not open the ${where}; nothing was changed`, { file, key: 'OFFSITE_PASSWORD_FILE', hint: `put the repository's password (from your password manager) into ${cfg.target.passwordFile}, then: ${next}` });
    case RESTIC_EXIT.noRepository:
      return new StepError(`${what} failed: there is no restic repository at the ${where}`, { step: 'offsite', hint: `create it once: npx zx scripts/offsite.mts --config ${file} --init (or fix OFFSITE_REPOSITORY)` });
    case RESTIC_EXIT.locked:
      return new StepError(`${what} failed: the ${where} is locked by another restic run (${line})`, { step: 'offsite', hint: `wait for it; if no restic runs anywhere: npx zx scripts/offsite.mts --config ${file} --unlock, then ${next}` });
    case RESTIC_EXIT.incomplete:
      return new StepError(`${what} failed: restic could not read every file, the snapshot is incomplete (${line})`, { step: 'offsite', hint: next });
    default:
      return new StepError(`${what} failed (restic exit ${r.code ?? r.signal}): ${line || 'no error message'}`, { step: 'offsite', hint: next });
  }
}

export function resticOk(r: ResticRun): boolean {
  return r.code === RESTIC_EXIT.ok && !r.timedOut;
}
