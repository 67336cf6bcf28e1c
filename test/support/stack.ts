// The e2e harness: brings up the real stack (our app and Caddy images, Compose, Pebble as the
// ACME server, the fake Bot API on the host) under a unique project name and free high ports.
// The env file it writes is an operator's env file: pass it to the toolkit with --config.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chownSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { inject } from 'vitest';
import { startFakeBotApi, type FakeBotApi } from './fake-bot-api.ts';
import { randomBotToken, randomSecret } from './telegram.ts';
import { freePorts } from './ports.ts';
import { writePebbleConfig } from './pebble.ts';
import { httpsRequest, httpRequest, type Reply, type RequestOptions, type Target } from './https.ts';
import { mustRun, repoRoot, run, type RunResult } from './run.ts';

export const APP_UID = 1000;

export type StackOptions = {
  /** Short label that goes into the Compose project name. */
  name?: string;
  /** Real ACME from Pebble for DOMAIN (default). false: DOMAIN=localhost with Caddy's internal CA. */
  pebble?: boolean;
  /** Start the fake Bot API and give the app a real-looking token (default true with pebble). */
  fakeBot?: boolean;
  /** Extra or overriding env file values. */
  env?: Record<string, string>;
  /** App image tag to run (default: the one built for this test run). */
  appTag?: string;
  /** Bring the stack up right away (default true). */
  start?: boolean;
  /** Compose project directory, whose docker-compose.yml the stack runs (default: this repository);
   * the adopter test passes the deploy/ directory of an app repository that carries the toolkit. */
  projectDir?: string;
  /** The app and proxy images to run (default: the ones built for this test run). Without tags, the
   * env file pins none: rollout builds and tags each release, as on a VPS. */
  images?: { appImage: string; appTag?: string; proxyImage: string; proxyTag?: string };
};

export type Stack = Target & {
  project: string;
  projectDir: string;
  runDir: string;
  stateDir: string;
  envFile: string;
  env: Record<string, string>;
  baseUrl: string;
  /** Path of the PEM root that verifies the site certificate. */
  caPem: string;
  fakeBot?: FakeBotApi;
  botToken: string;
  webhookSecret: string;
  compose(...args: string[]): Promise<RunResult>;
  mustCompose(...args: string[]): Promise<string>;
  fetch(path: string, init?: RequestOptions): Promise<Reply>;
  fetchHttp(path: string, init?: RequestOptions): Promise<Reply>;
  up(): Promise<void>;
  /** Only what the stack needs from outside: Pebble (the ACME server) and the fake Bot API; the
   * app and Caddy are then brought up by the toolkit (a first rollout). up() does this first. */
  upSupport(): Promise<void>;
  down(): Promise<void>;
  /** Ids of the running containers of one service. */
  containers(service: string): Promise<string[]>;
  pebbleOrders(): Promise<number>;
};

export function e2eImages() {
  return {
    appImage: inject('appImage'),
    appTag: inject('appTag'),
    proxyImage: inject('proxyImage'),
    proxyTag: inject('proxyTag'),
  };
}

function writeEnvFile(file: string, env: Record<string, string>) {
  const body = Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  writeFileSync(file, `# written by test/support/stack.ts\n${body}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export function makeStateDir(stateDir: string) {
  for (const sub of ['data', 'uploads', 'backups', 'logs']) mkdirSync(join(stateDir, sub), { recursive: true });
  for (const sub of ['data', 'uploads']) chownSync(join(stateDir, sub), APP_UID, APP_UID);
  // the toolkit reads data/ and uploads/ with the app's uid: it must pass through STATE_DIR and the
  // run directory above it (mkdtemp makes 0700), as through /srv/lazyflow (0755) on a VPS
  for (const d of [stateDir, dirname(stateDir)]) chmodSync(d, statSync(d).mode & 0o7777 | 0o011);
}

async function fetchPebbleRoot(mgmtPort: number, listenerCa: Buffer): Promise<string> {
  const deadline = Date.now() + 30_000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await new Promise<string>((res, rej) => {
        https
          .get({ host: '127.0.0.1', port: mgmtPort, path: '/roots/0', ca: listenerCa, servername: 'localhost' }, (r) => {
            let body = '';
            r.on('data', (d) => (body += d));
            r.on('end', () => (r.statusCode === 200 ? res(body) : rej(new Error(`status ${r.statusCode}`))));
          })
          .on('error', rej);
      });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Pebble management API never answered: ${last}`);
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const images = opts.images ?? e2eImages();
  const projectDir = opts.projectDir ?? repoRoot;
  const usePebble = opts.pebble ?? true;
  const useFakeBot = opts.fakeBot ?? usePebble;
  const suffix = randomBytes(3).toString('hex');
  const label = (opts.name ?? 'stack').toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 20);
  const project = `lzf-e2e-${label}-${suffix}`;
  const runDir = mkdtempSync(join(tmpdir(), `${project}-`));
  const stateDir = join(runDir, 'state');
  const pebbleDir = join(runDir, 'pebble');
  makeStateDir(stateDir);
  mkdirSync(pebbleDir);
  if (usePebble) writePebbleConfig(pebbleDir);

  const [httpPort, httpsPort, pebbleMgmtPort, fakeBotPort] = await freePorts(4);
  const domain = usePebble ? `${label}-${suffix}.lazyflow.test` : 'localhost';
  const botToken = useFakeBot ? randomBotToken() : '';
  const webhookSecret = usePebble || useFakeBot ? randomSecret(48) : 'local-try-out-secret-not-for-production-0000';
  const composeFiles = [resolve(projectDir, 'docker-compose.yml')];
  if (usePebble) composeFiles.push(resolve(repoRoot, 'test/support/pebble.compose.yml'));

  const env: Record<string, string> = {
    COMPOSE_PROJECT_NAME: project,
    COMPOSE_FILE: composeFiles.join(':'),
    STATE_DIR: stateDir,
    APP_IMAGE: images.appImage,
    ...(opts.appTag ?? images.appTag ? { APP_TAG: (opts.appTag ?? images.appTag)! } : {}),
    PROXY_IMAGE: images.proxyImage,
    ...(images.proxyTag ? { PROXY_TAG: images.proxyTag } : {}),
    PUBLISH_ADDRESS: '127.0.0.1',
    HTTP_PORT: String(httpPort),
    HTTPS_PORT: String(httpsPort),
    // Local try-out: compose's embedded defaults (localhost, no token, the local secret).
    ...(usePebble || useFakeBot ? {
      DOMAIN: domain,
      APP_URL: `https://${domain}`,
      ALLOWED_ORIGINS: `https://${domain}`,
      ACME_EMAIL: `ops@${domain}`,
      WEBHOOK_SECRET: webhookSecret,
      BOT_TOKEN: botToken,
    } : {}),
    LOG_LEVEL: 'info',
    JOB_HEARTBEAT_MS: '1000',
    UPLOAD_MAX_BYTES: String(2 * 1024 * 1024),
    ...(useFakeBot ? { TELEGRAM_API_ROOT: `http://host.docker.internal:${fakeBotPort}` } : {}),
    ...(usePebble ? { PEBBLE_DIR: pebbleDir, PEBBLE_MGMT_PORT: String(pebbleMgmtPort) } : {}),
    // the rollout installs recovery (the safety net) where these say: in this stack's own directory,
    // never the machine's /etc (nothing runs it there; a test that needs it runs what it installed)
    LAZYFLOW_UNIT_DIR: join(runDir, 'schedules', 'systemd'),
    LAZYFLOW_CRON_DIR: join(runDir, 'schedules', 'cron.d'),
    ...(process.env.BUN_IMAGE ? { BUN_IMAGE: process.env.BUN_IMAGE } : {}),
    ...(process.env.CADDY_IMAGE ? { CADDY_IMAGE: process.env.CADDY_IMAGE } : {}),
    ...(process.env.PEBBLE_IMAGE ? { PEBBLE_IMAGE: process.env.PEBBLE_IMAGE } : {}),
    ...opts.env,
  };
  const envFile = join(runDir, 'env.prod');
  writeEnvFile(envFile, env);

  const composeArgs = (...args: string[]) => ['compose', '--project-directory', projectDir, '--env-file', envFile, ...args];
  const caPem = join(runDir, 'site-root.pem');
  let fakeBot: FakeBotApi | undefined;

  const stack: Stack = {
    project,
    projectDir,
    runDir,
    stateDir,
    envFile,
    env,
    domain,
    httpPort,
    httpsPort,
    ca: '',
    baseUrl: `https://${domain}:${httpsPort}`,
    caPem,
    botToken,
    webhookSecret,
    get fakeBot() {
      return fakeBot;
    },
    compose: (...args) => run('docker', composeArgs(...args), { timeoutMs: 300_000 }),
    mustCompose: (...args) => mustRun('docker', composeArgs(...args), { timeoutMs: 300_000 }),
    fetch: (path, init) => httpsRequest(stack, path, init),
    fetchHttp: (path, init) => httpRequest(stack, path, init),
    async containers(service) {
      const out = await mustRun('docker', [
        'ps', '-q', '--no-trunc',
        '--filter', `label=com.docker.compose.project=${project}`,
        '--filter', `label=com.docker.compose.service=${service}`,
      ]);
      return out.split('\n').filter(Boolean);
    },
    async pebbleOrders() {
      const r = await stack.compose('logs', '--no-color', 'pebble');
      return (r.stdout.match(/POST \/order-plz/g) ?? []).length;
    },
    async up() {
      await stack.upSupport();
      const upRes = await stack.compose('up', '-d', '--wait', '--pull', 'never', '--no-build');
      if (upRes.code !== 0) {
        const logs = await stack.compose('logs', '--no-color', '--tail', '80');
        throw new Error(`docker compose up failed (${upRes.code}):\n${upRes.stderr}\n--- logs ---\n${logs.stdout}`);
      }
      if (!usePebble) {
        // Caddy's internal CA: its root sits in the caddy_data volume once the site is set up.
        await waitFor('Caddy internal root', async () => {
          const r = await stack.compose('exec', '-T', 'caddy', 'cat', '/data/caddy/pki/authorities/local/root.crt');
          return r.code === 0 && r.stdout.includes('BEGIN CERTIFICATE');
        }, 30_000);
        const r = await stack.mustCompose('exec', '-T', 'caddy', 'cat', '/data/caddy/pki/authorities/local/root.crt');
        writeFileSync(caPem, r);
        stack.ca = r;
      }
      // The certificate is obtained asynchronously: wait until HTTPS verifies and the app answers.
      await waitFor(`https://${domain}/health through Caddy`, async () => {
        const r = await stack.fetch('/health', { timeoutMs: 5_000 });
        return r.status === 200;
      }, 90_000, 500);
    },
    async upSupport() {
      if (usePebble) {
        await stack.mustCompose('up', '-d', '--pull', 'never', '--no-build', 'pebble');
        const root = await fetchPebbleRoot(pebbleMgmtPort, readFileSync(join(pebbleDir, 'listener-ca.pem')));
        writeFileSync(caPem, root);
        stack.ca = root;
      }
      if (useFakeBot && !fakeBot) {
        fakeBot = await startFakeBotApi({
          port: fakeBotPort,
          host: '0.0.0.0',
          resolve: { [`${domain}:443`]: `127.0.0.1:${httpsPort}` },
          ca: stack.ca || undefined,
          // Telegram delivers a bot's updates in parallel (up to max_connections, one queue per
          // chat); one at a time, a loaded test machine's slower round trips made the queue grow
          // behind updates that every test sends at a steady rate
          deliveryConcurrency: 4,
        });
      }
    },
    async down() {
      await stack.compose('down', '-v', '--remove-orphans', '--timeout', '5');
      await fakeBot?.stop();
      fakeBot = undefined;
      rmSync(runDir, { recursive: true, force: true });
    },
  };
  if (opts.start ?? true) {
    try {
      await stack.up();
    } catch (e) {
      const logs = await stack.compose('logs', '--no-color', '--tail', '60');
      await stack.down().catch(() => {});
      throw new Error(`${(e as Error).message}\n--- compose logs ---\n${logs.stdout}`);
    }
  }
  return stack;
}

declare module 'vitest' {
  export interface ProvidedContext {
    appImage: string;
    appTag: string;
    proxyImage: string;
    proxyTag: string;
  }
}
