// Smoke checks run after every restart (rollout, rollback, restore) and on demand. Each check is
// named, gathers what it needs (HTTPS through Caddy, docker inspect, the database on the host) and
// hands the facts to a pure evaluator in checks/evaluate.mts. Checks run concurrently with per-check
// timeouts, so the whole suite takes seconds.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { composeArgs, composeEnv, type ComposeContext } from '../commands/compose.mts';
import { docker } from '../docker/run.mts';
import { composePs, inspectProject, type ProjectContainer } from '../docker/app-container.mts';
import { drainStatus } from '../docker/drain.mts';
import { maintenanceCausedError, maintenanceHeaders, maintenanceStatus, readMaintenance } from '../maintenance/maintenance.mts';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import {
  evalBackupAge, evalContainers, evalCors, evalDb, evalDeadLetters, type DeadLettersObs, evalDisk, evalHealth, evalJobs, evalLogRotation, evalMiniApp, evalFrontend, evalNoMiniApp,
  evalRedirect, evalRoutes, evalSecurityHeaders, evalTls, evalUploads, evalWebhook, evalWebhookInfo, expectedWebhookUrl,
  parseComposePs, type DbObs, type HttpObs, type LogConfigObs, type SmokeResult, type Verdict,
} from './evaluate.mts';
import { httpGet, httpsGet, tlsProbe, type HttpResult, type Target } from './http.mts';
import { getWebhookInfo, hostApiRoot, redactToken } from '../telegram/bot-api.mts';
import { currentRelease, readJournal } from '../release/journal.mts';
import { observeFrontend } from '../release/frontend.mts';
import { isLocalMode } from './preflight.mts';
import { judgeWebhookError, type SwapWindow } from '../release/judge.mts';
import { parseApiPaths, probePathFor } from '../config/api-paths.mts';
import { withDbReadOnly } from '../host/sqlite-read.mts';
import { asAppUser, treeOwner } from '../host/app-files.mts';
import { readContractDb } from '../contract/check.mts';
import { RUNBOOK_CONTRACT, judgeContract, readyPathOf, recommendedNotice, recommendedNotices } from '../contract/items.mts';
import { evalHardening } from './hardening.mts';
import { evalNet, netVerdict } from '../schedules/net.mts';
import { decideShape, hasMiniApp, hasProxy, hasUploads, pollingBot, shapeOfRelease, type BotShape } from '../config/shape.mts';

export const APP_UID = 1000;

export interface SmokeOptions {
  only?: string[];
  skip?: string[];
  log?: Logger;
  /** PEM file with the root that verifies the site certificate (private CA, Pebble in tests) */
  ca?: string;
  /** address Caddy's published ports are dialled on (default 127.0.0.1) */
  connect?: string;
  /** version /health must report (default: the current release in the journal, if any) */
  expectVersion?: string;
  jobsMaxAgeMs?: number;
  pendingMax?: number;
  minFreeBytes?: number;
  telegramApiRoot?: string;
  timeoutMs?: number;
  now?: () => Date;
  /**
   * the swap this smoke follows (a rollout's or rollback's gate): a delivery error the swap itself
   * caused is reported, not failed (release/judge.mts judgeWebhookError)
   */
  swapWindow?: SwapWindow;
  /** how to reach Caddy, as the health gate right before made it (smokeTarget): not made again */
  target?: Target;
}

export interface SmokeReport {
  results: SmokeResult[];
  failed: boolean;
  ms: number;
}

export interface SmokeCtx {
  env: OpsEnv;
  opts: SmokeOptions;
  target: Target;
  now: () => Date;
  /** memoized probes shared between checks */
  memo<T>(key: string, f: () => Promise<T>): Promise<T>;
}

export interface SmokeCheck {
  name: string;
  describe: string;
  run(c: SmokeCtx): Promise<Verdict>;
}

// ---------------------------------------------------------------------------------------------
// shared probes

// which containers run, and their inspect data: the one place for that is docker/app-container.mts
type Inspect = ProjectContainer;
export { composePs, inspectProject };

function composeCtx(env: OpsEnv): ComposeContext {
  return { projectDir: env.projectDir, envFile: env.envFile, project: env.project, composeFiles: env.composeFiles };
}

function running(list: Inspect[] | undefined): Inspect | undefined {
  return (list ?? []).find((c) => c.State.Status === 'running');
}

async function caddyLocalRoot(env: OpsEnv): Promise<string | undefined> {
  const p = await docker(composeArgs(composeCtx(env), 'exec', '-T', 'caddy', 'cat', '/data/caddy/pki/authorities/local/root.crt'), { nothrow: true, env: composeEnv(env.values) });
  return p.exitCode === 0 && p.stdout.includes('BEGIN CERTIFICATE') ? p.stdout : undefined;
}

export async function smokeTarget(env: OpsEnv, opts: SmokeOptions): Promise<Target> {
  const v = env.values;
  const t: Target = {
    domain: env.domain,
    httpsPort: Number(v.HTTPS_PORT || 443),
    httpPort: Number(v.HTTP_PORT || 80),
    connect: opts.connect ?? '127.0.0.1',
  };
  // during maintenance the toolkit's own requests carry its key, so they reach the app (Caddyfile)
  const maintenance = maintenanceHeaders(readMaintenance(env.layout));
  if (Object.keys(maintenance).length) t.headers = maintenance;
  if (opts.ca) t.ca = fs.readFileSync(opts.ca, 'utf8');
  else if ((env.domain === 'localhost' || env.domain.endsWith('.localhost')) && !pollingBot(v)) t.ca = await caddyLocalRoot(env);
  return t;
}

const obs = (r: HttpResult): HttpObs => r;

/**
 * The bot's shape as smoke sees it (config/shape.mts): the env file, else what the live release was
 * deployed as (the releases journal); an unknown BOT_SHAPE is preflight's to refuse, smoke checks the default.
 */
export function smokeShape(env: OpsEnv): BotShape {
  const releases = readJournal(env.layout.releases).releases;
  const d = decideShape({ values: env.values, recorded: shapeOfRelease(releases, currentRelease(releases)?.appTag) });
  return d.ok ? d.shape : 'webhook-miniapp';
}

/** the services the stack runs: a polling bot (bot shape polling) runs the app alone, no Caddy */
async function stackServices(c: SmokeCtx): Promise<string[]> {
  return hasProxy(await c.memo('shape', async () => smokeShape(c.env))) ? ['app', 'caddy'] : ['app'];
}

/**
 * The checks that ask through Caddy (or about what only Caddy serves): a polling bot has no ingress,
 * so each is skipped with this reason. telegram: smoke's check expects the webhook; the rollout's
 * Telegram gate judges a poller (no webhook set, the queue moving).
 */
export const NEEDS_PROXY: Readonly<Record<string, string>> = {
  health: '/health through Caddy: the rollout\'s health gate checks the container\'s own healthcheck',
  tls: 'no certificate', redirect: 'no HTTP listener', headers: 'no HTTPS responses', cors: 'no HTTPS responses',
  webhook: 'no webhook route', uploads: 'no uploads route served', contract: 'asks /health through Caddy',
  miniapp: 'no Mini App', frontend: 'no front end', routes: 'no routes served',
  telegram: 'no webhook to check: the rollout\'s Telegram gate checks that none is set and the queue moves',
};

// ---------------------------------------------------------------------------------------------
// the checks

export const CHECKS: SmokeCheck[] = [
  {
    name: 'containers',
    describe: 'app and caddy are running and healthy (exactly one app container)',
    async run(c) {
      const rows = await composePs(c.env);
      const d = drainStatus(c.env.layout);
      const drain = d && { ...d, next: `node scripts/recover.mts --config ${c.env.file}` };
      return evalContainers(rows, await stackServices(c), drain);
    },
  },
  {
    name: 'health',
    describe: '/health over HTTPS through Caddy reports the expected version',
    async run(c) {
      const r = await c.memo('health', () => httpsGet(c.target, '/health', { timeoutMs: c.opts.timeoutMs }));
      let expected = c.opts.expectVersion;
      if (!expected) expected = currentRelease(readJournal(c.env.layout.releases).releases)?.appTag;
      // without a version in /health (contract item health-version), the running container's image is compared
      const app = running((await c.memo('inspect', () => inspectProject(c.env))).app);
      const ref = app?.Config.Image ?? '';
      return evalHealth(obs(r), expected, app ? { imageRef: ref, tag: ref.includes(':') ? ref.slice(ref.lastIndexOf(':') + 1) : 'latest', status: app.State.Status } : null);
    },
  },
  {
    name: 'tls',
    describe: 'certificate valid for DOMAIN, chain verifies (system trust or --ca), expiry >= 14 d (warn) / 3 d (fail)',
    async run(c) {
      return evalTls(await tlsProbe(c.target, c.opts.timeoutMs), c.target.domain, c.now());
    },
  },
  {
    name: 'redirect',
    describe: 'plain HTTP redirects to HTTPS',
    async run(c) {
      return evalRedirect(obs(await httpGet(c.target, '/', { timeoutMs: c.opts.timeoutMs })), c.target.domain);
    },
  },
  {
    name: 'headers',
    describe: 'HSTS, nosniff, Referrer-Policy and CSP present; no Server header',
    async run(c) {
      const paths = ['/', '/health'];
      const rs = await Promise.all(paths.map((p) => (p === '/health' ? c.memo('health', () => httpsGet(c.target, p, { timeoutMs: c.opts.timeoutMs })) : c.memo('index', () => httpsGet(c.target, p, { timeoutMs: c.opts.timeoutMs })))));
      return evalSecurityHeaders(paths.map((p, i) => ({ path: p, r: obs(rs[i]) })));
    },
  },
  {
    name: 'cors',
    describe: 'the allowed origin is answered, any other is not, no wildcard',
    async run(c) {
      const allowedOrigin = (c.env.values.ALLOWED_ORIGINS || c.env.appUrl).split(',')[0].trim();
      const otherOrigin = 'https://smoke-foreign-origin.invalid';
      const pre = (origin: string) => httpsGet(c.target, '/me', {
        method: 'OPTIONS',
        timeoutMs: c.opts.timeoutMs,
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
      const [allowed, other] = await Promise.all([pre(allowedOrigin), pre(otherOrigin)]);
      return evalCors({ allowedOrigin, otherOrigin, allowed, other });
    },
  },
  {
    name: 'webhook',
    describe: 'GET /webhook/<secret> is refused; POST without the secret header gives 401',
    async run(c) {
      const secret = c.env.values.WEBHOOK_SECRET || 'local-try-out-secret-not-for-production-0000';
      const p = `/webhook/${secret}`;
      // The POST carries no body: it is about the header. An app may refuse before reading a body (the
      // fixture does), and Caddy, still streaming that body, then answers 502 for the app's 401.
      const [get, postNoHeader] = await Promise.all([
        httpsGet(c.target, p, { timeoutMs: c.opts.timeoutMs }),
        httpsGet(c.target, p, { method: 'POST', timeoutMs: c.opts.timeoutMs, headers: { 'content-type': 'application/json', 'content-length': '0' } }),
      ]);
      return evalWebhook({ get, postNoHeader });
    },
  },
  {
    name: 'uploads',
    describe: 'unauthenticated /files/x gives 401/404; nothing under the uploads directory is reachable by any URL',
    async run(c) {
      const layout = c.env.layout;
      // 1. no other container of the project has the uploads (or the whole state) directory mounted
      const by = await c.memo('inspect', () => inspectProject(c.env));
      const exposed: string[] = [];
      for (const [svc, list] of Object.entries(by)) {
        if (svc === 'app') continue;
        for (const ct of list) for (const m of ct.Mounts ?? []) {
          const src = path.resolve(m.Source);
          if (src === layout.uploads || layout.uploads.startsWith(src + path.sep) || src.startsWith(layout.uploads + path.sep)) exposed.push(`${svc} mounts ${m.Source} at ${m.Destination}`);
        }
      }
      // 2. a canary file in the uploads directory is served by no guessable URL
      const name = `smoke-canary-${randomBytes(6).toString('hex')}.txt`;
      const canary = `lazyflow smoke canary ${randomBytes(8).toString('hex')}`;
      const file = path.join(layout.uploads, name);
      let wrote = false;
      try {
        // written as the app's uid ('wx': a new file, never through a link the app left under that
        // name), so it is the app's file with no chown by path
        asAppUser(() => fs.writeFileSync(file, canary, { mode: 0o640, flag: 'wx' }), treeOwner(layout.uploads));
        wrote = true;
      } catch {
        /* uploads dir not writable from here: URL probes still run with the name */
      }
      try {
        const urls = [`/uploads/${name}`, `/${name}`, `/files/${name}`, `/media/${name}`, `/app/uploads/${name}`, `/static/${name}`, `/assets/${name}`, `/data/${name}`, `/srv/${name}`, `/u/${name}`];
        // a bot without uploads (shape webhook) has no /files route to ask; the directory still must not leak
        const uploads = hasUploads(await c.memo('shape', async () => smokeShape(c.env)));
        const [unauth, ...rs] = await Promise.all([
          uploads ? httpsGet(c.target, '/files/x', { timeoutMs: c.opts.timeoutMs }) : undefined,
          ...urls.map((u) => httpsGet(c.target, u, { timeoutMs: c.opts.timeoutMs })),
        ]);
        const v = evalUploads({ unauth, probes: urls.map((url, i) => ({ url, r: rs[i]! })), canary: wrote ? canary : '\u0000never' });
        if (exposed.length) return { status: 'fail', detail: `uploads directory exposed: ${exposed.join('; ')}${v.status === 'fail' ? `; ${v.detail}` : ''}` };
        return v;
      } finally {
        if (wrote) {
          try {
            fs.unlinkSync(file); // the name only: whatever the app made of it meanwhile
          } catch {
            /* gone or replaced by a directory: the app's business */
          }
        }
      }
    },
  },
  {
    name: 'telegram',
    describe: 'getWebhookInfo: url == APP_URL/webhook/SECRET, no error since the app started, pending_update_count under a threshold',
    async run(c) {
      const v = c.env.values;
      const token = v.BOT_TOKEN ?? '';
      if (!token) return { status: 'skip', detail: isLocalMode(v) ? 'local mode (no BOT_TOKEN): Telegram is not used' : 'no BOT_TOKEN in the env file' };
      const root = hostApiRoot(v, c.opts.telegramApiRoot);
      const by = await c.memo('inspect', () => inspectProject(c.env));
      const app = running(by.app);
      const startedAt = app ? new Date(app.State.StartedAt) : undefined;
      try {
        const info = await getWebhookInfo(root, token);
        // maintenance answers Telegram 503 on purpose: its errors and the queue it holds are not the app's
        const maint = maintenanceStatus(readMaintenance(c.env.layout), c.now());
        if (maint.on || maintenanceCausedError(info, maint, c.now())) {
          const expectedUrl = expectedWebhookUrl(c.env.appUrl, v.WEBHOOK_SECRET ?? '');
          const verdict = evalWebhookInfo({ ...info, last_error_date: undefined, ...(maint.on ? { pending_update_count: 0 } : {}) }, { expectedUrl, secret: v.WEBHOOK_SECRET ?? '', pendingMax: c.opts.pendingMax ?? 100 });
          if (verdict.status !== 'pass') return verdict;
          return maint.on
            ? { status: 'warn', detail: `maintenance on: Telegram holds ${info.pending_update_count} update(s), answered 503 with Retry-After; they arrive after node scripts/maintenance.mts --off` }
            : { status: 'pass', detail: `${verdict.detail}; the last error (${info.last_error_message}) was the maintenance that ended ${maint.endedAt}` };
        }
        const whose = c.opts.swapWindow ? judgeWebhookError(info, c.opts.swapWindow) : 'release';
        const verdict = evalWebhookInfo(info, {
          expectedUrl: expectedWebhookUrl(c.env.appUrl, v.WEBHOOK_SECRET ?? ''), secret: v.WEBHOOK_SECRET ?? '',
          startedAt: whose === 'swap-window' ? undefined : startedAt, pendingMax: c.opts.pendingMax ?? 100,
        });
        if (whose === 'swap-window' && verdict.status === 'pass') verdict.detail += `; the last error (${info.last_error_message}) came from the swap window itself, not the release`;
        return verdict;
      } catch (e) {
        return { status: 'fail', detail: redactToken((e as Error).message, token) };
      }
    },
  },
  {
    name: 'database',
    describe: 'quick_check ok, journal_mode WAL, file owner and mode right',
    async run(c) {
      return evalDb(inspectDb(c.env.layout.db), APP_UID);
    },
  },
  {
    name: 'jobs',
    describe: "the background jobs' last tick is recent",
    async run(c) {
      const r = await c.memo('health', () => httpsGet(c.target, '/health', { timeoutMs: c.opts.timeoutMs }));
      let lastTickAt: string | null | undefined;
      try {
        lastTickAt = (JSON.parse(r.body) as { jobs?: { lastTickAt?: string | null } }).jobs?.lastTickAt;
      } catch {
        lastTickAt = undefined;
      }
      // undefined from both: the app keeps no heartbeat (contract item jobs-heartbeat), the check is skipped
      if (lastTickAt === undefined) lastTickAt = lastTickFromDb(c.env.layout.db);
      const by = await c.memo('inspect', () => inspectProject(c.env));
      const app = running(by.app);
      const hb = Number(c.env.values.JOB_HEARTBEAT_MS || 5000);
      const maxAgeMs = c.opts.jobsMaxAgeMs ?? Math.max(30_000, 3 * hb);
      return evalJobs({ lastTickAt, now: c.now(), maxAgeMs, startedAt: app ? new Date(app.State.StartedAt) : undefined });
    },
  },
  {
    name: 'dead-letters',
    describe: 'Telegram updates the app gave up on (dead_letters table): warn with count and newest; skipped when the app has no such table',
    async run(c) {
      return evalDeadLetters(readDeadLetters(c.env.layout.db));
    },
  },
  {
    name: 'contract',
    describe: 'the recommended app contract items the live app shows (health-version, user-version, jobs-heartbeat, update-dedupe, readiness): a notice naming each one it lacks',
    async run(c) {
      const r = await c.memo('health', () => httpsGet(c.target, '/health', { timeoutMs: c.opts.timeoutMs }));
      if (r.error || r.status !== 200) return { status: 'skip', detail: `/health does not answer 200 (${r.error ?? r.status}): see the health check` };
      const readyPath = readyPathOf(c.env.values);
      const results = judgeContract({ imageUser: '', boot: { answered: true }, health: { status: r.status, body: r.body }, readyPath, db: readContractDb(c.env.layout.db) }, 'recommended')
        // readiness is judged from READY_PATH alone: Caddy keeps the path off the public site
        .filter((x) => x.id !== 'readiness');
      // only what the app lacks: a value that is there but off (a heartbeat that has not ticked yet) is the jobs and health checks' business
      const notices = recommendedNotices(results.filter((x) => x.status === 'missing'));
      if (readyPath === '/health') notices.push(recommendedNotice({ id: 'readiness', status: 'missing', detail: 'READY_PATH=/health: Caddy polls /health, the app has no readiness path', runbook: RUNBOOK_CONTRACT }));
      if (notices.length) return { status: 'warn', detail: notices.join('; ') };
      return { status: 'pass', detail: `${results.filter((x) => x.status === 'pass').map((x) => x.id).join(', ')} present; readiness at ${readyPath} (its lame-duck period: check-app.mts)` };
    },
  },
  {
    name: 'disk',
    describe: 'free disk in STATE_DIR above a threshold',
    async run(c) {
      const st = fs.statfsSync(c.env.layout.root);
      return evalDisk({ path: c.env.layout.root, freeBytes: Number(st.bavail) * Number(st.bsize), totalBytes: Number(st.blocks) * Number(st.bsize), minFreeBytes: c.opts.minFreeBytes ?? 2 ** 30 });
    },
  },
  {
    name: 'backups',
    describe: 'the newest backup is younger than 26 h (warning otherwise)',
    async run(c) {
      return evalBackupAge({ newest: newestBackup(c.env.layout.backups), now: c.now() });
    },
  },
  {
    name: 'logs',
    describe: 'log rotation is configured on both containers',
    async run(c) {
      const by = await c.memo('inspect', () => inspectProject(c.env));
      const list: LogConfigObs[] = (await stackServices(c)).map((s) => {
        const ct = running(by[s]) ?? by[s]?.[0];
        if (!ct) return { service: s, error: 'no container' };
        return { service: s, type: ct.HostConfig.LogConfig?.Type, config: ct.HostConfig.LogConfig?.Config };
      });
      return evalLogRotation(list);
    },
  },
  {
    name: 'hardening',
    describe: 'app and caddy: read-only root, capabilities dropped (caddy: only NET_BIND_SERVICE), no-new-privileges, app not root',
    async run(c) {
      const by = await c.memo('inspect', () => inspectProject(c.env));
      return evalHardening((await stackServices(c)).map((service) => {
        const ct = (running(by[service]) ?? by[service]?.[0]) as (Inspect & { HostConfig: { ReadonlyRootfs?: boolean; Privileged?: boolean; CapDrop?: string[] | null; CapAdd?: string[] | null; SecurityOpt?: string[] | null }; Config: { User?: string } }) | undefined;
        return ct ? { service, readonlyRootfs: ct.HostConfig.ReadonlyRootfs, privileged: ct.HostConfig.Privileged, capDrop: ct.HostConfig.CapDrop, capAdd: ct.HostConfig.CapAdd, securityOpt: ct.HostConfig.SecurityOpt, user: ct.Config.User } : { service, error: 'no container' };
      }));
    },
  },
  {
    name: 'miniapp',
    describe: 'the Mini App index is served with its CSP and /config.js carries the API base (bot shape webhook: / serves no Mini App)',
    async run(c) {
      if (!hasMiniApp(await c.memo('shape', async () => smokeShape(c.env)))) {
        return evalNoMiniApp({ index: await c.memo('index', () => httpsGet(c.target, '/', { timeoutMs: c.opts.timeoutMs })) });
      }
      const [index, config] = await Promise.all([
        c.memo('index', () => httpsGet(c.target, '/', { timeoutMs: c.opts.timeoutMs })),
        httpsGet(c.target, '/config.js', { timeoutMs: c.opts.timeoutMs }),
      ]);
      return evalMiniApp({ index, config, apiBase: c.env.appUrl.replace(/\/+$/, '') });
    },
  },
  {
    name: 'frontend',
    describe: "the Mini App served is the live release's (its /lazyflow-release.json names the app tag)",
    async run(c) {
      const shape = await c.memo('shape', async () => smokeShape(c.env));
      if (!hasMiniApp(shape)) return { status: 'skip', detail: `bot shape ${shape}: no front end with the release` };
      const marker = await httpsGet(c.target, '/lazyflow-release.json', { timeoutMs: c.opts.timeoutMs });
      const expected = c.opts.expectVersion ?? currentRelease(readJournal(c.env.layout.releases).releases)?.appTag;
      return evalFrontend({ marker, expected, expectedStaged: Boolean(expected && observeFrontend(c.env).staged.includes(expected)) });
    },
  },
  {
    name: 'routes',
    describe: 'each API_PATHS path reaches the app through Caddy, not the Mini App index',
    async run(c) {
      const patterns = parseApiPaths(c.env.values.API_PATHS);
      const paths = patterns.map((p) => probePathFor(p));
      const [index, ...rs] = await Promise.all([
        c.memo('index', () => httpsGet(c.target, '/', { timeoutMs: c.opts.timeoutMs })),
        ...paths.map((p) => (p === '/health' ? c.memo('health', () => httpsGet(c.target, p, { timeoutMs: c.opts.timeoutMs })) : httpsGet(c.target, p, { timeoutMs: c.opts.timeoutMs }))),
      ]);
      return evalRoutes({ index, probes: patterns.map((pattern, i) => ({ pattern, path: paths[i], r: rs[i] })) });
    },
  },
  {
    name: 'safety-net',
    describe: 'recovery runs at boot and every minute (the rollout installs it; warn when missing, naming the command; skipped with LAZYFLOW_SAFETY_NET=off)',
    async run(c) {
      return evalNet(await netVerdict(c.env));
    },
  },
];

export const CHECK_NAMES = CHECKS.map((c) => c.name);

// ---------------------------------------------------------------------------------------------
// host-side readers

// opening the live database read-only: host/sqlite-read.mts (the contract checker reads with it too)
export { withDbReadOnly };

export function inspectDb(dbFile: string): DbObs {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dbFile);
  } catch {
    return { error: `database ${dbFile} does not exist` };
  }
  try {
    return withDbReadOnly(dbFile, (db) => ({
      quickCheck: (db.pragma('quick_check', { simple: true }) as string) ?? '?',
      journalMode: db.pragma('journal_mode', { simple: true }) as string,
      userVersion: db.pragma('user_version', { simple: true }) as number,
      uid: st.uid,
      mode: st.mode & 0o777,
      dirMode: fs.statSync(path.dirname(dbFile)).mode & 0o777,
    }));
  } catch (e) {
    return { error: `cannot read ${dbFile}: ${(e as Error).message}` };
  }
}

/** PRAGMA user_version of the live database, or null when there is none. */
export function readUserVersion(dbFile: string): number | null {
  if (!fs.existsSync(dbFile)) return null;
  try {
    return withDbReadOnly(dbFile, (db) => db.pragma('user_version', { simple: true }) as number);
  } catch {
    return null;
  }
}

/**
 * The highest update_id the app recorded in any table with an update_id column (processed updates,
 * replies, dead letters: the contract's update-dedupe item), or null when it keeps none.
 */
export function readHandledUpdateMax(dbFile: string): number | null {
  if (!fs.existsSync(dbFile)) return null;
  try {
    return withDbReadOnly(dbFile, (db) => {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[])
        .filter((t) => (db.prepare(`PRAGMA table_info("${t.replace(/"/g, '""')}")`).all() as { name: string }[]).some((c) => c.name === 'update_id'));
      if (!tables.length) return null;
      let max: number | null = null;
      for (const t of tables) {
        const m = db.prepare(`SELECT max(update_id) FROM "${t.replace(/"/g, '""')}"`).pluck().get() as number | null;
        if (m !== null && (max === null || m > max)) max = m;
      }
      return max ?? -1;
    });
  } catch {
    return null;
  }
}

/** The dead_letters table of the live database, read-only; any app may lack it, or have other columns. */
export function readDeadLetters(dbFile: string): DeadLettersObs {
  if (!fs.existsSync(dbFile)) return { error: `database ${dbFile} does not exist` };
  try {
    return withDbReadOnly(dbFile, (db): DeadLettersObs => {
      if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'").get()) return { table: false };
      const { n } = db.prepare('SELECT count(*) AS n FROM dead_letters').get() as { n: number };
      const cols = new Set((db.prepare('PRAGMA table_info(dead_letters)').all() as { name: string }[]).map((r) => r.name));
      const order = cols.has('failed_at') ? 'failed_at DESC, rowid DESC' : 'rowid DESC';
      const newest = n ? (db.prepare(`SELECT * FROM dead_letters ORDER BY ${order} LIMIT 1`).get() as Record<string, unknown>) : undefined;
      return {
        table: true,
        count: n,
        newest: newest && {
          update_id: typeof newest.update_id === 'number' ? newest.update_id : undefined,
          failed_at: typeof newest.failed_at === 'string' ? newest.failed_at : undefined,
          last_error: typeof newest.last_error === 'string' ? newest.last_error : undefined,
        },
      };
    });
  } catch (e) {
    return { error: `cannot read ${dbFile}: ${(e as Error).message}` };
  }
}

/** The newest tick in job_heartbeats; null when the table is empty (or unreadable), undefined when the app has no such table. */
function lastTickFromDb(dbFile: string): string | null | undefined {
  try {
    return withDbReadOnly(dbFile, (db) => {
      if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job_heartbeats'").get()) return undefined;
      const row = db.prepare('SELECT max(last_tick_at) AS t FROM job_heartbeats').get() as { t: string | null } | undefined;
      return row?.t ?? null;
    });
  } catch {
    return null;
  }
}

export function newestBackup(dir: string): { id: string; createdAt: string } | null {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return null;
  }
  let best: { id: string; createdAt: string; t: number } | null = null;
  for (const n of names) {
    if (n.startsWith('.') || /\.(tmp|partial|incomplete)$/.test(n) || n.includes('.tmp')) continue;
    const mf = path.join(dir, n, 'manifest.json');
    let createdAt: string | undefined;
    try {
      const m = JSON.parse(fs.readFileSync(mf, 'utf8')) as { created_at?: string; createdAt?: string };
      createdAt = m.created_at ?? m.createdAt;
    } catch {
      continue; // no manifest: not a published backup
    }
    if (!createdAt) continue;
    const t = Date.parse(createdAt);
    if (Number.isFinite(t) && (!best || t > best.t)) best = { id: n, createdAt, t };
  }
  return best ? { id: best.id, createdAt: best.createdAt } : null;
}

// ---------------------------------------------------------------------------------------------

export function selectChecks(only?: string[], skip?: string[]): SmokeCheck[] {
  const unknown = [...(only ?? []), ...(skip ?? [])].filter((n) => !CHECK_NAMES.includes(n));
  if (unknown.length) throw new Error(`unknown check ${unknown.join(', ')}; checks: ${CHECK_NAMES.join(', ')}`);
  return CHECKS.filter((c) => (!only?.length || only.includes(c.name)) && !(skip ?? []).includes(c.name));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]);
}

/** Contract: runSmoke(ctx, {only?, skip?, log}) -> {results, failed}. */
export async function runSmoke(env: OpsEnv, opts: SmokeOptions = {}): Promise<SmokeReport> {
  const t0 = performance.now();
  const checks = selectChecks(opts.only, opts.skip);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const memoStore = new Map<string, Promise<unknown>>();
  const target = opts.target ?? (await smokeTarget(env, opts));
  const c: SmokeCtx = {
    env,
    opts: { ...opts, timeoutMs },
    target,
    now: opts.now ?? (() => new Date()),
    memo<T>(key: string, f: () => Promise<T>) {
      if (!memoStore.has(key)) memoStore.set(key, f());
      return memoStore.get(key) as Promise<T>;
    },
  };
  const noProxy = !hasProxy(await c.memo('shape', async () => smokeShape(env)));
  const results = await Promise.all(
    checks.map(async (ch): Promise<SmokeResult> => {
      if (noProxy && NEEDS_PROXY[ch.name]) return { name: ch.name, status: 'skip', detail: `bot shape polling, no Caddy: ${NEEDS_PROXY[ch.name]}`, ms: 0 };
      const s = performance.now();
      try {
        const v = await withTimeout(ch.run(c), timeoutMs + 5000, ch.name);
        return { name: ch.name, ...v, ms: Math.round(performance.now() - s) };
      } catch (e) {
        return { name: ch.name, status: 'fail', detail: `check crashed: ${(e as Error).message}`, ms: Math.round(performance.now() - s) };
      }
    }),
  );
  for (const r of results) opts.log?.debug(`smoke ${r.name}: ${r.status} ${r.detail}`);
  return { results, failed: results.some((r) => r.status === 'fail'), ms: Math.round(performance.now() - t0) };
}
