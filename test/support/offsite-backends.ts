// Real restic backends for the offsite tests, started by the harness and removed afterwards:
//   rest  `rclone serve restic` on the host (restic's REST protocol, basic auth)
//   sftp  a real OpenSSH server in a stand-in container (key authentication only)
//   s3    moto_server, an S3 emulator (it proves our S3 configuration and credentials plumbing, not a
//         storage product)
// Each gives the env-file values that point the toolkit at it, and can be stopped and started
// again (the "backend dies mid-upload" case).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { freePorts } from './ports.ts';
import { mustRun, run } from './run.ts';

export type BackendKind = 'rest' | 'sftp' | 's3';

export interface OffsiteBackend {
  kind: BackendKind;
  /** env file values (OFFSITE_*, AWS_*) */
  env: Record<string, string>;
  /** where the repository's files live on the host (rest, sftp), to damage them in tests */
  repoDir: string | null;
  /** the restic password file (outside any STATE_DIR) */
  passwordFile: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stop and remove everything */
  destroy(): Promise<void>;
}

export const RESTIC_BIN = process.env.LAZYFLOW_RESTIC_BIN ?? 'restic';
export const RCLONE_BIN = process.env.LAZYFLOW_RCLONE_BIN ?? 'rclone';
export const SSHD_IMAGE = process.env.SSHD_IMAGE ?? 'lazyflow-standin/sshd:bookworm-git';
export const MOTO_SERVER = process.env.LAZYFLOW_MOTO_SERVER ?? 'moto_server';

async function waitPort(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.end();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function secretFile(dir: string, name: string, content: string): string {
  const f = join(dir, name);
  writeFileSync(f, content, { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

function hostProcess(cmd: string, args: string[]): { start(): Promise<ChildProcess>; stop(): Promise<void> } {
  let child: ChildProcess | null = null;
  return {
    async start() {
      child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', () => {});
      return child;
    },
    async stop() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((res) => {
        c.once('exit', () => res());
        c.kill('SIGKILL');
      });
    },
  };
}

export async function startBackend(kind: BackendKind): Promise<OffsiteBackend> {
  const base = mkdtempSync(join(tmpdir(), `lzf-offsite-${kind}-`));
  const passwordFile = secretFile(base, 'restic-password', randomBytes(24).toString('hex'));
  const [port] = await freePorts(1);
  if (kind === 'rest') {
    const repoDir = join(base, 'repos');
    mkdirSync(repoDir);
    const user = 'lazyflow';
    const pass = randomBytes(12).toString('hex');
    // the server's copy of the credentials: an htpasswd file, so the password is in no argv that `ps` shows
    // (the e2e tests sample every process's command line for it)
    const htpasswd = secretFile(base, 'htpasswd', `${user}:{SHA}${createHash('sha1').update(pass).digest('base64')}\n`);
    const proc = hostProcess(RCLONE_BIN, ['serve', 'restic', '--addr', `127.0.0.1:${port}`, '--htpasswd', htpasswd, repoDir]);
    const be: OffsiteBackend = {
      kind,
      repoDir: join(repoDir, 'lazyflow'),
      passwordFile,
      env: {
        OFFSITE_REPOSITORY: `rest:http://127.0.0.1:${port}/lazyflow/`,
        OFFSITE_PASSWORD_FILE: passwordFile,
        OFFSITE_REST_USERNAME: user,
        OFFSITE_REST_PASSWORD_FILE: secretFile(base, 'rest-password', pass),
      },
      async start() {
        await proc.start();
        await waitPort(port);
      },
      stop: () => proc.stop(),
      async destroy() {
        await proc.stop();
        rmSync(base, { recursive: true, force: true });
      },
    };
    await startOrClean(be);
    return be;
  }
  if (kind === 's3') {
    const proc = hostProcess(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)]);
    const be: OffsiteBackend = {
      kind,
      repoDir: null,
      passwordFile,
      env: {
        OFFSITE_REPOSITORY: `s3:http://127.0.0.1:${port}/lazyflow-${randomBytes(3).toString('hex')}/repo`,
        OFFSITE_PASSWORD_FILE: passwordFile,
        AWS_ACCESS_KEY_ID: 'AKIA' + randomBytes(8).toString('hex').toUpperCase(),
        AWS_SECRET_ACCESS_KEY: randomBytes(20).toString('hex'),
        AWS_DEFAULT_REGION: 'us-east-1',
      },
      async start() {
        await proc.start();
        await waitPort(port);
      },
      stop: () => proc.stop(),
      async destroy() {
        await proc.stop();
        rmSync(base, { recursive: true, force: true });
      },
    };
    await startOrClean(be);
    return be;
  }
  // sftp: a real sshd in a container, the client's public key as the only way in
  const key = join(base, 'id_ed25519');
  await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lazyflow-offsite-test', '-f', key]);
  chmodSync(key, 0o600);
  const keysDir = join(base, 'authorized_keys');
  mkdirSync(keysDir);
  writeFileSync(join(keysDir, 'offsite'), readFileSync(`${key}.pub`));
  chmodSync(keysDir, 0o755);
  const repoDir = join(base, 'srv');
  mkdirSync(repoDir);
  chmodSync(repoDir, 0o777);
  const name = `lzf-e2e-sftp-${randomBytes(3).toString('hex')}`;
  const be: OffsiteBackend = {
    kind,
    repoDir: join(repoDir, 'repo'),
    passwordFile,
    env: {
      OFFSITE_REPOSITORY: `sftp://offsite@127.0.0.1:${port}//srv/restic/repo`,
      OFFSITE_PASSWORD_FILE: passwordFile,
      OFFSITE_SFTP_KEY: key,
      // the server's host key, pinned as RUNBOOK says (ssh-keyscan once the server runs, below)
      OFFSITE_SFTP_KNOWN_HOSTS: join(base, 'known_hosts'),
    },
    async start() {
      const exists = (await run('docker', ['inspect', name])).code === 0;
      if (exists) await mustRun('docker', ['start', name]);
      else {
        await mustRun('docker', ['run', '-d', '--name', name, '--label', 'lazyflow.e2e=offsite', '-p', `127.0.0.1:${port}:22`,
          '-v', `${keysDir}:/etc/ssh/authorized_keys:ro`, '-v', `${repoDir}:/srv/restic`, SSHD_IMAGE]);
      }
      await waitPort(port);
      // sshd accepts TCP before it is ready to talk: wait for its banner
      await waitBanner(port);
      const scan = await mustRun('ssh-keyscan', ['-p', String(port), '-t', 'ed25519', '127.0.0.1']);
      writeFileSync(join(base, 'known_hosts'), scan);
    },
    async stop() {
      await run('docker', ['kill', name]);
    },
    async destroy() {
      await run('docker', ['rm', '-f', '-v', name]);
      rmSync(base, { recursive: true, force: true });
    },
  };
  await startOrClean(be);
  return be;
}

/** a backend that fails to come up leaves nothing behind */
async function startOrClean(be: OffsiteBackend): Promise<void> {
  try {
    await be.start();
  } catch (err) {
    await be.destroy().catch(() => {});
    throw err;
  }
}

export async function waitBanner(port: number, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('data', (d) => {
        s.destroy();
        res(d.toString().startsWith('SSH-'));
      });
      s.on('error', () => res(false));
      setTimeout(() => {
        s.destroy();
        res(false);
      }, 2000);
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${port} sent no banner`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Why the offsite backends cannot run here, or null. */
export async function offsiteMissingReason(kinds: BackendKind[]): Promise<string | null> {
  const r = await run(RESTIC_BIN, ['version']).catch(() => null);
  if (!r || r.code !== 0) return `restic not found (${RESTIC_BIN}); run test/prepare-offsite.sh`;
  if (kinds.includes('rest')) {
    const c = await run(RCLONE_BIN, ['version']).catch(() => null);
    if (!c || c.code !== 0) return `rclone not found (${RCLONE_BIN}); run test/prepare-offsite.sh`;
  }
  if (kinds.includes('s3')) {
    const m = await run(MOTO_SERVER, ['--help']).catch(() => null);
    if (!m || m.code !== 0) return `moto_server not found (${MOTO_SERVER})`;
  }
  if (kinds.includes('sftp')) {
    const i = await run('docker', ['image', 'inspect', SSHD_IMAGE]).catch(() => null);
    if (!i || i.code !== 0) return `image ${SSHD_IMAGE} missing; run test/prepare-offsite.sh`;
  }
  return null;
}
