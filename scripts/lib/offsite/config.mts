// Offsite configuration from the env file. Offsite is on when OFFSITE_REPOSITORY is set; then every
// key below is checked (preflight names each bad or missing one) and turned into a ResticTarget.
//   OFFSITE_REPOSITORY          restic repository URL without credentials (sftp:, s3:, rest:, ...)
//   OFFSITE_PASSWORD_FILE       file holding the repository password: mode 600, outside STATE_DIR
//   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY [/ AWS_DEFAULT_REGION]   for s3: repositories
//   OFFSITE_SFTP_KEY [/ OFFSITE_SFTP_KNOWN_HOSTS]                      for sftp: repositories
//   OFFSITE_REST_USERNAME / OFFSITE_REST_PASSWORD_FILE                 for rest: servers with auth
//   OFFSITE_TIMEOUT             seconds one restic run may take (default 3600); restic itself
//                               retries a dead backend for 15 minutes
//   OFFSITE_RESTIC              restic binary (default: restic on PATH, or $LAZYFLOW_RESTIC_BIN)
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { ConfigError } from '../cli/errors.mts';
import type { ResticTarget } from '../commands/restic.mts';

export const OFFSITE_KEYS = ['OFFSITE_REPOSITORY', 'OFFSITE_PASSWORD_FILE', 'OFFSITE_SFTP_KEY', 'OFFSITE_SFTP_KNOWN_HOSTS', 'OFFSITE_REST_USERNAME', 'OFFSITE_REST_PASSWORD_FILE', 'OFFSITE_TIMEOUT', 'OFFSITE_RESTIC', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_DEFAULT_REGION'] as const;

export type Backend = 'sftp' | 's3' | 'rest' | 'local' | 'other';

export function backendOf(repository: string): Backend {
  if (/^sftp:/.test(repository)) return 'sftp';
  if (/^s3:/.test(repository)) return 's3';
  if (/^rest:/.test(repository)) return 'rest';
  if (/^(\/|\.\/|local:)/.test(repository)) return 'local';
  return 'other';
}

/** a file as observed for the checks: existence and permission bits */
export interface FileObservation {
  exists: boolean;
  isFile?: boolean;
  mode?: number;
}

export function observeFile(p: string): FileObservation {
  try {
    const st = statSync(p);
    return { exists: true, isFile: st.isFile(), mode: st.mode & 0o777 };
  } catch {
    return { exists: false };
  }
}

export interface OffsiteProblem {
  key: string;
  message: string;
  fix: string;
}

export function offsiteEnabled(values: Record<string, string | undefined>): boolean {
  return (values.OFFSITE_REPOSITORY ?? '').trim() !== '';
}

/** a URL with user:password in it would put the password into argv, logs and error messages */
export function repositoryHasCredentials(repository: string): boolean {
  const u = repository.replace(/^(rest|s3|swift|b2|azure|gs|rclone):/, '');
  return /^[a-z]+:\/\/[^/@\s]*:[^/@\s]*@/i.test(u);
}

/**
 * Every bad or missing offsite key, judged from the env values and the observed files. Pure: the
 * caller passes `observe` (observeFile in production). Empty when offsite is off or all is well.
 */
export function offsiteProblems(values: Record<string, string | undefined>, stateDir: string, file: string, observe: (p: string) => FileObservation = observeFile, projectDir = process.cwd()): OffsiteProblem[] {
  const p: OffsiteProblem[] = [];
  if (!offsiteEnabled(values)) {
    for (const k of ['OFFSITE_PASSWORD_FILE', 'OFFSITE_SFTP_KEY', 'OFFSITE_REST_USERNAME']) {
      if ((values[k] ?? '').trim()) p.push({ key: 'OFFSITE_REPOSITORY', message: `${k} is set but OFFSITE_REPOSITORY is empty in ${file}: offsite backups are off`, fix: `set OFFSITE_REPOSITORY=<restic repository URL> in ${file}, or remove ${k}` });
    }
    return p;
  }
  const repo = (values.OFFSITE_REPOSITORY ?? '').trim();
  const backend = backendOf(repo);
  if (repositoryHasCredentials(repo)) {
    p.push({ key: 'OFFSITE_REPOSITORY', message: `OFFSITE_REPOSITORY in ${file} carries a user:password: it would show in ps and logs`, fix: `remove the credentials from the URL and set OFFSITE_REST_USERNAME and OFFSITE_REST_PASSWORD_FILE in ${file}` });
  }
  if (backend === 'local') {
    const abs = resolve(projectDir, repo.replace(/^local:/, ''));
    if (inside(abs, stateDir)) p.push({ key: 'OFFSITE_REPOSITORY', message: `OFFSITE_REPOSITORY ${abs} is inside STATE_DIR: not offsite at all`, fix: `point OFFSITE_REPOSITORY at another machine (sftp:, s3:, rest:) in ${file}` });
  }
  const secretFile = (key: string, what: string, required: boolean) => {
    const v = (values[key] ?? '').trim();
    if (!v) {
      if (required) p.push({ key, message: `${key} is missing in ${file}: ${what}`, fix: `set ${key}=/root/lazyflow-offsite/<file> (mode 600, outside STATE_DIR) in ${file}` });
      return;
    }
    if (!isAbsolute(v)) {
      p.push({ key, message: `${key} in ${file} is not an absolute path: "${v}"`, fix: `use an absolute path for ${key}` });
      return;
    }
    const o = observe(v);
    if (!o.exists) p.push({ key, message: `${key} names ${v}, which does not exist`, fix: `create it: install -m 600 /dev/null ${v}, then put the ${what} in it` });
    else if (o.isFile === false) p.push({ key, message: `${key} names ${v}, which is not a regular file`, fix: `point ${key} at the file holding the ${what}` });
    else if (o.mode !== undefined && (o.mode & 0o077) !== 0) p.push({ key, message: `${key} file ${v} has mode ${o.mode.toString(8).padStart(4, '0')}: others can read it`, fix: `chmod 600 ${v}` });
    if (inside(v, stateDir)) p.push({ key, message: `${key} file ${v} is inside STATE_DIR: a backup of STATE_DIR would carry its own key, and losing the disk loses it too`, fix: `move it out of STATE_DIR, e.g. /root/lazyflow-offsite/, and keep a copy in your password manager` });
  };
  secretFile('OFFSITE_PASSWORD_FILE', 'restic repository password', true);
  if (backend === 's3') {
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      if (!(values[k] ?? '').trim()) p.push({ key: k, message: `${k} is missing in ${file}: an s3: repository needs it`, fix: `set ${k}=... (from your object store's access keys) in ${file}` });
    }
  }
  if (backend === 'sftp') {
    secretFile('OFFSITE_SFTP_KEY', 'SSH private key for the SFTP server', true);
    // the server's host key is pinned, never trusted on first use: a machine in the path at the first
    // connection would otherwise receive every backup (and could serve a forged repository to a restore)
    const kh = (values.OFFSITE_SFTP_KNOWN_HOSTS ?? '').trim();
    const keyscan = (f: string) => `ssh-keyscan -p <port> <host> > ${f}; ssh-keygen -lf ${f} (compare the fingerprint with the one your provider publishes)`;
    if (!kh) p.push({ key: 'OFFSITE_SFTP_KNOWN_HOSTS', message: `OFFSITE_SFTP_KNOWN_HOSTS is missing in ${file}: an sftp: repository needs the server's host key pinned`, fix: `${keyscan('/root/lazyflow-offsite/known_hosts')}, then set OFFSITE_SFTP_KNOWN_HOSTS=/root/lazyflow-offsite/known_hosts in ${file}` });
    else if (!observe(kh).exists) p.push({ key: 'OFFSITE_SFTP_KNOWN_HOSTS', message: `OFFSITE_SFTP_KNOWN_HOSTS names ${kh}, which does not exist`, fix: `create it: ${keyscan(kh)}` });
  }
  const restUser = (values.OFFSITE_REST_USERNAME ?? '').trim();
  const restPass = (values.OFFSITE_REST_PASSWORD_FILE ?? '').trim();
  if (restUser || restPass) {
    if (backend !== 'rest') p.push({ key: 'OFFSITE_REST_USERNAME', message: `OFFSITE_REST_USERNAME/OFFSITE_REST_PASSWORD_FILE are set but OFFSITE_REPOSITORY is not a rest: URL`, fix: `remove them or use rest:https://host/path` });
    if (!restUser) p.push({ key: 'OFFSITE_REST_USERNAME', message: `OFFSITE_REST_USERNAME is missing in ${file} (OFFSITE_REST_PASSWORD_FILE is set)`, fix: `set OFFSITE_REST_USERNAME in ${file}` });
    secretFile('OFFSITE_REST_PASSWORD_FILE', 'REST server password', true);
  }
  const timeout = (values.OFFSITE_TIMEOUT ?? '').trim();
  if (timeout && !(/^\d+$/.test(timeout) && Number(timeout) >= 10)) p.push({ key: 'OFFSITE_TIMEOUT', message: `OFFSITE_TIMEOUT in ${file} must be whole seconds >= 10, got "${timeout}"`, fix: `set OFFSITE_TIMEOUT=3600 in ${file}` });
  return p;
}

function inside(p: string, dir: string): boolean {
  const a = resolve(p);
  const d = resolve(dir);
  return a === d || a.startsWith(d + sep);
}

export interface OffsiteConfig {
  target: ResticTarget;
  backend: Backend;
  restic: string;
  timeoutMs: number;
}

/** The offsite configuration, or null when OFFSITE_REPOSITORY is empty. Throws ConfigError (exit 2) naming the first bad key. */
export function loadOffsiteConfig(ctx: { values: Record<string, string>; stateDir: string; file: string; project: string; projectDir: string }, env: NodeJS.ProcessEnv = process.env): OffsiteConfig | null {
  const v = ctx.values;
  if (!offsiteEnabled(v)) return null;
  const problems = offsiteProblems(v, ctx.stateDir, ctx.file, observeFile, ctx.projectDir);
  if (problems.length) {
    const first = problems[0];
    throw new ConfigError(problems.map((x) => x.message).join('; '), { file: ctx.file, key: first.key, hint: first.fix });
  }
  const repository = v.OFFSITE_REPOSITORY.trim();
  const backend = backendOf(repository);
  const credentials: Record<string, string> = {};
  const options: string[] = [];
  if (backend === 's3') {
    credentials.AWS_ACCESS_KEY_ID = v.AWS_ACCESS_KEY_ID;
    credentials.AWS_SECRET_ACCESS_KEY = v.AWS_SECRET_ACCESS_KEY;
    if (v.AWS_DEFAULT_REGION) credentials.AWS_DEFAULT_REGION = v.AWS_DEFAULT_REGION;
  }
  if (backend === 'rest' && v.OFFSITE_REST_USERNAME) {
    credentials.RESTIC_REST_USERNAME = v.OFFSITE_REST_USERNAME;
    credentials.RESTIC_REST_PASSWORD = readFileSync(v.OFFSITE_REST_PASSWORD_FILE, 'utf8').trim();
  }
  if (backend === 'sftp') {
    // offsiteProblems made OFFSITE_SFTP_KNOWN_HOSTS required: only the pinned key is accepted
    options.push(`sftp.args=-i ${v.OFFSITE_SFTP_KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${v.OFFSITE_SFTP_KNOWN_HOSTS.trim()} -o StrictHostKeyChecking=yes -o ServerAliveInterval=10 -o ServerAliveCountMax=3`);
  }
  return {
    target: { repository, passwordFile: v.OFFSITE_PASSWORD_FILE.trim(), cacheDir: join(ctx.stateDir, 'offsite', 'cache'), host: ctx.project, credentials, options },
    backend,
    restic: v.OFFSITE_RESTIC || env.LAZYFLOW_RESTIC_BIN || 'restic',
    timeoutMs: Number(v.OFFSITE_TIMEOUT || 3600) * 1000,
  };
}
