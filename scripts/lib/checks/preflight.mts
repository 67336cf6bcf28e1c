// Preflight: checks as data. Pure evaluators take what was observed (file mode, parsed env values,
// command outputs) and return results; `collectPreflight` gathers the observations with zx.
// Every failure names the key or file and the fix.
import fs from 'node:fs';
import path from 'node:path';
import { appEnv } from '../config/app-env.mts';
import { DEFAULT_FRONTEND_DIR, decideShape, pollingBot, shapeOfRelease, shapeSummary, type ShapeDecision } from '../config/shape.mts';

export interface CheckResult {
  name: string;
  ok: boolean;
  /** 'warn' results are ok:true but printed; 'error' results fail preflight */
  level: 'ok' | 'warn' | 'error';
  message: string;
  key?: string;
  file?: string;
  fix?: string;
}

/** Embedded local try-out default of the app; refused outside local mode. */
export const LOCAL_DEFAULT_SECRET = 'local-try-out-secret-not-for-production-0000';
export const SECRET_RE = /^[A-Za-z0-9_-]{32,}$/;
export const BOT_TOKEN_RE = /^[0-9]{3,}:[A-Za-z0-9_-]{20,}$/;
export const MIN_NODE = [22, 18] as const;

const ok = (name: string, message: string, extra: Partial<CheckResult> = {}): CheckResult => ({ name, ok: true, level: 'ok', message, ...extra });
const warn = (name: string, message: string, extra: Partial<CheckResult> = {}): CheckResult => ({ name, ok: true, level: 'warn', message, ...extra });
const fail = (name: string, message: string, extra: Partial<CheckResult> = {}): CheckResult => ({ name, ok: false, level: 'error', message, ...extra });

/** Values that are obviously not filled in. */
export function placeholderReason(value: string): string | null {
  const v = value.trim();
  if (/change[_-]?me/i.test(v)) return 'contains CHANGE_ME';
  if (/^<[^>]*>$/.test(v) || /<[A-Za-z _-]+>/.test(v)) return 'is a <placeholder>';
  if (/replace[_-]?(me|this|with)/i.test(v)) return 'says "replace me"';
  if (/^your[_-]/i.test(v) || /\byour[-_.]?(domain|token|secret|email)\b/i.test(v)) return 'is a "your-..." placeholder';
  if (/(^|[@./])example\.(com|org|net)$/i.test(v) || /\/\/([a-z0-9-]+\.)*example\.(com|org|net)\b/i.test(v)) return 'uses an example.* domain';
  if (/^(x{3,}|\.\.\.|todo|tbd|fixme|secret|token|password)$/i.test(v)) return 'is a placeholder word';
  return null;
}

export function isLocalHost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || host === '127.0.0.1' || host === '::1';
}

export function isLocalMode(values: Record<string, string | undefined>): boolean {
  if ((values.BOT_TOKEN ?? '').trim() !== '') return false;
  try {
    return isLocalHost(new URL(values.APP_URL ?? '').hostname);
  } catch {
    return isLocalHost(values.DOMAIN ?? '');
  }
}

/** docker-compose.yml's embedded defaults: the local try-out needs no key at all. */
export const COMPOSE_DEFAULTS: Record<string, string> = {
  DOMAIN: 'localhost',
  APP_URL: 'https://localhost',
  ALLOWED_ORIGINS: 'https://localhost',
  WEBHOOK_SECRET: LOCAL_DEFAULT_SECRET,
  BOT_TOKEN: '',
};

/**
 * Keys that must be set explicitly: none for the local try-out (compose defaults), all of these in
 * production; a polling bot (BOT_SHAPE=polling) has no domain, certificate, webhook or Mini App: only its token.
 */
export function requiredKeys(local: boolean, polling = false): string[] {
  if (local) return [];
  return polling ? ['BOT_TOKEN'] : ['DOMAIN', 'APP_URL', 'WEBHOOK_SECRET', 'ALLOWED_ORIGINS', 'BOT_TOKEN', 'ACME_EMAIL'];
}

/** Keys whose value equal to the example file's value means "not filled in" (outside local mode). */
const EXAMPLE_SENSITIVE = ['BOT_TOKEN', 'WEBHOOK_SECRET', 'DOMAIN', 'APP_URL', 'ACME_EMAIL', 'ALLOWED_ORIGINS', 'ADMIN_CHAT_ID'];

export interface EnvObservation {
  file: string;
  exists: boolean;
  mode?: number; // st.mode & 0o777
  values: Record<string, string>;
  /** parsed .env.prod.example, when present: its values are placeholders in production */
  example?: Record<string, string>;
  exampleFile?: string;
}

export function checkEnv(o: EnvObservation): CheckResult[] {
  const r: CheckResult[] = [];
  const file = o.file;
  if (!o.exists) {
    r.push(fail('env file', `env file ${file} does not exist`, { file, fix: `cp ${o.exampleFile ?? '.env.prod.example'} ${file} && chmod 600 ${file}, then fill in every key` }));
    return r;
  }
  if (o.mode !== undefined) {
    if ((o.mode & 0o077) !== 0) {
      r.push(fail('env file mode', `${file} has mode ${o.mode.toString(8).padStart(4, '0')}: group/others can read the secrets in it`, { file, fix: `chmod 600 ${file}` }));
    } else {
      r.push(ok('env file mode', `${file} mode ${o.mode.toString(8).padStart(4, '0')}`, { file }));
    }
  }
  // Empty values count as unset, as compose's ${KEY:-default} does.
  const set = Object.fromEntries(Object.entries(o.values).filter(([, x]) => x.trim() !== ''));
  const local = isLocalMode({ ...COMPOSE_DEFAULTS, ...set });
  // Local try-out: judge the values compose will really use; production: only what the file says.
  const v: Record<string, string> = local ? { ...COMPOSE_DEFAULTS, ...set } : o.values;
  if (local) r.push(warn('mode', 'local mode: BOT_TOKEN is empty and APP_URL is localhost (no webhook, Caddy internal CA); not a production setup', { file }));

  const missing = requiredKeys(local, pollingBot(v)).filter((k) => (v[k] ?? '').trim() === '');
  for (const k of missing) {
    r.push(fail(`key ${k}`, `${k} is missing or empty in ${file}`, { key: k, file, fix: fixFor(k, file) }));
  }

  // placeholders
  for (const [k, val] of Object.entries(v)) {
    if (!val) continue;
    const why = placeholderReason(val);
    if (why) {
      r.push(fail(`key ${k}`, `${k} in ${file} ${why}: "${truncate(val)}"`, { key: k, file, fix: fixFor(k, file) }));
      continue;
    }
    if (!local && o.example && EXAMPLE_SENSITIVE.includes(k) && o.example[k] && o.example[k] === val && !isLocalValue(val)) {
      r.push(fail(`key ${k}`, `${k} in ${file} still has the example value from ${o.exampleFile ?? '.env.prod.example'}`, { key: k, file, fix: fixFor(k, file) }));
    }
  }
  const flagged = new Set(r.filter((x) => !x.ok && x.key).map((x) => x.key));

  // WEBHOOK_SECRET strength
  const secret = v.WEBHOOK_SECRET ?? '';
  if (secret && !flagged.has('WEBHOOK_SECRET')) {
    if (!SECRET_RE.test(secret)) {
      r.push(fail('key WEBHOOK_SECRET', `WEBHOOK_SECRET in ${file} is weak: it needs at least 32 characters of A-Z a-z 0-9 _ - (has ${secret.length}${/[^A-Za-z0-9_-]/.test(secret) ? ', with other characters' : ''})`, { key: 'WEBHOOK_SECRET', file, fix: fixFor('WEBHOOK_SECRET', file) }));
    } else if (secret === LOCAL_DEFAULT_SECRET) {
      if (local) r.push(warn('key WEBHOOK_SECRET', `WEBHOOK_SECRET is the embedded local default (accepted in local mode only)`, { key: 'WEBHOOK_SECRET', file, fix: fixFor('WEBHOOK_SECRET', file) }));
      else r.push(fail('key WEBHOOK_SECRET', `WEBHOOK_SECRET in ${file} is the embedded local try-out default, which production refuses`, { key: 'WEBHOOK_SECRET', file, fix: fixFor('WEBHOOK_SECRET', file) }));
    } else if (new Set(secret).size < 8) {
      r.push(fail('key WEBHOOK_SECRET', `WEBHOOK_SECRET in ${file} is weak: only ${new Set(secret).size} distinct characters`, { key: 'WEBHOOK_SECRET', file, fix: fixFor('WEBHOOK_SECRET', file) }));
    } else {
      r.push(ok('key WEBHOOK_SECRET', `strong (${secret.length} chars)`, { key: 'WEBHOOK_SECRET', file }));
    }
  }

  // BOT_TOKEN format
  const token = v.BOT_TOKEN ?? '';
  if (token && !flagged.has('BOT_TOKEN')) {
    if (!BOT_TOKEN_RE.test(token)) {
      r.push(fail('key BOT_TOKEN', `BOT_TOKEN in ${file} does not look like a bot token (<digits>:<35 chars of A-Z a-z 0-9 _ ->)`, { key: 'BOT_TOKEN', file, fix: fixFor('BOT_TOKEN', file) }));
    } else {
      r.push(ok('key BOT_TOKEN', `format ok (bot id ${token.split(':')[0]})`, { key: 'BOT_TOKEN', file }));
    }
  }

  // APP_URL https, host == DOMAIN
  const appUrl = v.APP_URL ?? '';
  const domain = (v.DOMAIN ?? '').trim();
  if (appUrl && !flagged.has('APP_URL')) {
    let u: URL | null = null;
    try {
      u = new URL(appUrl);
    } catch {
      r.push(fail('key APP_URL', `APP_URL in ${file} is not a URL: "${truncate(appUrl)}"`, { key: 'APP_URL', file, fix: `set APP_URL=https://${domain || '<your domain>'} in ${file}` }));
    }
    if (u) {
      if (u.protocol !== 'https:') {
        r.push(fail('key APP_URL', `APP_URL in ${file} must be https, got ${u.protocol}//: Telegram only delivers webhooks over HTTPS and the Mini App needs it`, { key: 'APP_URL', file, fix: `set APP_URL=https://${u.host} in ${file}` }));
      } else if (domain && u.hostname !== domain.toLowerCase()) {
        r.push(fail('key APP_URL', `APP_URL host "${u.hostname}" is not DOMAIN "${domain}" in ${file}: Caddy gets a certificate for DOMAIN only`, { key: 'APP_URL', file, fix: `set APP_URL=https://${domain} (or DOMAIN=${u.hostname}) in ${file}` }));
      } else if (u.pathname !== '/' && u.pathname !== '') {
        r.push(fail('key APP_URL', `APP_URL in ${file} has a path (${u.pathname}); the webhook URL is APP_URL/webhook/<secret>`, { key: 'APP_URL', file, fix: `set APP_URL=https://${u.host} in ${file}` }));
      } else {
        r.push(ok('key APP_URL', `${appUrl} matches DOMAIN`, { key: 'APP_URL', file }));
      }
    }
  }

  // ALLOWED_ORIGINS
  const origins = v.ALLOWED_ORIGINS ?? '';
  if (origins && !flagged.has('ALLOWED_ORIGINS')) {
    const list = origins.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = list.filter((o2) => o2 === '*' || o2.includes('*'));
    if (bad.length) {
      r.push(fail('key ALLOWED_ORIGINS', `ALLOWED_ORIGINS in ${file} contains a wildcard (${bad.join(', ')}): any site could call the API with a user's initData`, { key: 'ALLOWED_ORIGINS', file, fix: `list exact origins, e.g. ALLOWED_ORIGINS=${appUrl ? safeOrigin(appUrl) : 'https://<your domain>'}` }));
    } else {
      const invalid = list.filter((o2) => {
        try {
          const u = new URL(o2);
          return u.origin !== o2.replace(/\/$/, '') || (!local && u.protocol !== 'https:');
        } catch {
          return true;
        }
      });
      if (invalid.length) {
        r.push(fail('key ALLOWED_ORIGINS', `ALLOWED_ORIGINS in ${file} has entries that are not https origins: ${invalid.join(', ')}`, { key: 'ALLOWED_ORIGINS', file, fix: 'use scheme://host[:port] entries, comma separated, https in production' }));
      } else {
        r.push(ok('key ALLOWED_ORIGINS', `${list.length} origin(s)`, { key: 'ALLOWED_ORIGINS', file }));
      }
    }
  }

  // ACME_EMAIL shape (production)
  const email = v.ACME_EMAIL ?? '';
  if (email && !flagged.has('ACME_EMAIL') && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    r.push(fail('key ACME_EMAIL', `ACME_EMAIL in ${file} is not an email address`, { key: 'ACME_EMAIL', file, fix: `set ACME_EMAIL=<you>@<your domain> in ${file} (Let's Encrypt expiry notices)` }));
  }

  if (!r.some((x) => !x.ok)) r.push(ok('env file', `${file}: every required key present`, { file }));
  return r;
}

/** Compose sets these for the app to fixed values: the env file's value never reaches it. */
const FIXED_BY_COMPOSE = ['NODE_ENV', 'PORT', 'DB_PATH', 'UPLOADS_DIR'];

/**
 * The app's own keys (config/app-env.mts decides which): named (never their values) as the ones the
 * app container gets; MINI_APP_URL, when set, must be an https URL; a multi-line value cannot pass.
 */
export function checkAppEnv(values: Record<string, string>, file: string): CheckResult[] {
  const r: CheckResult[] = [];
  const a = appEnv(values);
  const keys = Object.keys(a.vars);
  r.push(ok('app env', keys.length ? `${keys.length} app key(s) passed to the app container: ${keys.join(', ')}` : 'no app keys of its own in the env file (only the toolkit\'s standard ones reach the app)', { file }));
  const backup = a.withheld.filter((w) => w.owner === 'backup').map((w) => w.key);
  if (backup.length) r.push(ok('app env withheld', `kept from the app container (backup credentials): ${backup.join(', ')}`, { file }));
  for (const k of a.multiline) {
    r.push(fail(`key ${k}`, `${k} in ${file} spans several lines: a container env file cannot carry it to the app`, { key: k, file, fix: `put ${k} on one line (e.g. base64 it, or point ${k}_FILE at a file under STATE_DIR/data) in ${file}` }));
  }
  for (const k of FIXED_BY_COMPOSE) {
    if ((values[k] ?? '') !== '') r.push(warn(`key ${k}`, `${k} in ${file} is ignored: docker-compose.yml fixes it for the app container`, { key: k, file, fix: `remove ${k} from ${file}` }));
  }
  const mini = (values.MINI_APP_URL ?? '').trim();
  if (mini && !placeholderReason(mini)) {
    let u: URL | null = null;
    try {
      u = new URL(mini);
    } catch {
      u = null;
    }
    if (!u) r.push(fail('key MINI_APP_URL', `MINI_APP_URL in ${file} is not a URL: "${truncate(mini)}"`, { key: 'MINI_APP_URL', file, fix: `set MINI_APP_URL=https://<the Mini App's host> in ${file} (usually APP_URL)` }));
    else if (u.protocol !== 'https:') r.push(fail('key MINI_APP_URL', `MINI_APP_URL in ${file} must be https, got ${u.protocol}//: Telegram opens Mini Apps over HTTPS only`, { key: 'MINI_APP_URL', file, fix: `set MINI_APP_URL=https://${u.host} in ${file}` }));
    else r.push(ok('key MINI_APP_URL', `${u.origin} is https`, { key: 'MINI_APP_URL', file }));
  }
  return r;
}

/**
 * The keys that say what the stack asks of the app (READY_PATH, HEALTHCHECK_PATH) and how the Mini App
 * builds (FRONTEND_DIR, FRONTEND_DIST): a path that would break Caddy's config, the healthcheck's
 * bash or Bun script, or leave the repository is refused, naming the key.
 */
export function checkStackKeys(values: Record<string, string>, file: string): CheckResult[] {
  const r: CheckResult[] = [];
  for (const k of ['READY_PATH', 'HEALTHCHECK_PATH'] as const) {
    const v = (values[k] ?? '').trim();
    if (!v) continue;
    if (!/^\/[A-Za-z0-9._~/%?=&-]*$/.test(v)) {
      r.push(fail(`key ${k}`, `${k} in ${file} is "${truncate(v)}": an absolute URL path of letters, digits and . _ ~ / - % ? = & only`, { key: k, file, fix: `set ${k}=/health in ${file} (RUNBOOK "The app contract")` }));
    }
  }
  for (const k of ['FRONTEND_DIR', 'FRONTEND_DIST'] as const) {
    const v = (values[k] ?? '').trim();
    if (!v) continue;
    if (v.startsWith('/') || v.split('/').includes('..') || !/^[A-Za-z0-9._/-]+$/.test(v)) {
      r.push(fail(`key ${k}`, `${k} in ${file} is "${truncate(v)}": a directory inside the repository, relative to its root (e.g. frontend)`, { key: k, file, fix: `set ${k} relative to the repository root in ${file}, e.g. ${k === 'FRONTEND_DIR' ? 'FRONTEND_DIR=frontend' : 'FRONTEND_DIST=frontend/dist'}` }));
    }
  }
  return r;
}

/** The bot's shape (RUNBOOK "Bot shapes"): which one, why, and what the toolkit does for it; an unknown BOT_SHAPE fails. */
export function checkShape(d: ShapeDecision, file: string): CheckResult {
  if (!d.ok) return fail('bot shape', `${d.error} in ${file}`, { key: 'BOT_SHAPE', file, fix: `${d.fix} in ${file}` });
  return ok('bot shape', `${d.shape} (${d.why}): ${shapeSummary(d.shape)}`);
}

/** the shape as rollout will see it: the checkout the release builds from (not in envOnly mode) and the live release */
async function observeShape(env: { file: string; projectDir: string; stateDir: string }, values: Record<string, string>, envOnly?: boolean): Promise<CheckResult> {
  const { readJournal, currentRelease } = await import('../release/journal.mts');
  const { stateLayout } = await import('../config/state.mts');
  const releases = readJournal(stateLayout(env.stateDir).releases).releases;
  let defaultFrontendDir: boolean | undefined;
  if (!envOnly) {
    const { releaseLayout } = await import('../release/rollout.mts');
    defaultFrontendDir = fs.existsSync(path.join((await releaseLayout(env.projectDir)).root, DEFAULT_FRONTEND_DIR));
  }
  return checkShape(decideShape({ values, defaultFrontendDir, recorded: shapeOfRelease(releases, currentRelease(releases)?.appTag) }), env.file);
}

/**
 * App keys the contract checker found missing: the last refused image exited at start-up naming them
 * (STATE_DIR/contract-cache.json), and the env file still does not set them. A warning, not a
 * failure: the app may no longer need them, and the rollout's contract gate checks again.
 */
export function checkMissingAppKeys(missing: { image: string; at: string; keys: string[] } | null, file: string): CheckResult[] {
  if (!missing?.keys.length) return [];
  return missing.keys.map((k) => warn(`app key ${k}`, `${k} is not set in ${file}: the contract check of ${missing.image} (${missing.at}) saw the app exit at start-up naming it`, {
    key: k, file, fix: `add ${k}=<value> to ${file} (RUNBOOK "The app's own settings"), then roll out again`,
  }));
}

function isLocalValue(v: string): boolean {
  return /localhost|127\.0\.0\.1/.test(v) || v === LOCAL_DEFAULT_SECRET;
}

function safeOrigin(u: string): string {
  try {
    return new URL(u).origin;
  } catch {
    return 'https://<your domain>';
  }
}

function truncate(s: string, n = 40): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

export function fixFor(key: string, file: string): string {
  switch (key) {
    case 'WEBHOOK_SECRET':
      return `generate one: sed -i "s/^WEBHOOK_SECRET=.*/WEBHOOK_SECRET=$(openssl rand -hex 32)/" ${file}`;
    case 'BOT_TOKEN':
      return `set BOT_TOKEN to the token @BotFather gave you (123456789:AA...) in ${file}`;
    case 'DOMAIN':
      return `set DOMAIN to the DNS name pointing at this server in ${file}`;
    case 'APP_URL':
      return `set APP_URL=https://<DOMAIN> in ${file}`;
    case 'ALLOWED_ORIGINS':
      return `set ALLOWED_ORIGINS=https://<DOMAIN> (comma list of exact origins) in ${file}`;
    case 'ACME_EMAIL':
      return `set ACME_EMAIL to a mailbox you read in ${file}`;
    default:
      return `set ${key} in ${file} (see .env.prod.example)`;
  }
}

// ---- system ---------------------------------------------------------------------------------

export function parseVersion(s: string): number[] | null {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(s);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null;
}

export function versionAtLeast(v: number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    if ((v[i] ?? 0) > min[i]) return true;
    if ((v[i] ?? 0) < min[i]) return false;
  }
  return true;
}

export interface SystemObservation {
  docker: { ok: boolean; serverVersion?: string; error?: string };
  compose: { ok: boolean; version?: string; error?: string };
  nodeVersion: string;
  disk: { path: string; freeBytes: number; minFreeBytes: number } | null;
  composeConfig?: { ok: boolean; output?: string };
  caddyfile?: { ok: boolean; output?: string; file?: string; skipped?: string };
}

export function checkSystem(o: SystemObservation): CheckResult[] {
  const r: CheckResult[] = [];
  r.push(o.docker.ok
    ? ok('docker engine', `engine ${o.docker.serverVersion}`)
    : fail('docker engine', `no Docker engine answers: ${firstLine(o.docker.error)}`, { fix: 'install Docker (RUNBOOK: VPS preparation) and start it: systemctl enable --now docker' }));
  const cv = parseVersion(o.compose.version ?? '');
  if (!o.compose.ok || !cv) {
    r.push(fail('compose v2', `"docker compose" (v2 plugin) not found: ${firstLine(o.compose.error)}`, { fix: 'install the Compose v2 plugin (docker-compose-plugin); Compose v1 "docker-compose" is not supported' }));
  } else if (cv[0] < 2) {
    r.push(fail('compose v2', `docker compose ${o.compose.version} is v1`, { fix: 'install the Compose v2 plugin' }));
  } else {
    r.push(ok('compose v2', `docker compose ${o.compose.version}`));
  }
  const nv = parseVersion(o.nodeVersion);
  r.push(nv && versionAtLeast(nv, MIN_NODE)
    ? ok('node', `node ${o.nodeVersion}`)
    : fail('node', `node ${o.nodeVersion} is older than ${MIN_NODE.join('.')} (no native TypeScript)`, { fix: 'install Node >= 22.18 (RUNBOOK: VPS preparation)' }));
  if (o.disk) {
    const { freeBytes, minFreeBytes, path: p } = o.disk;
    r.push(freeBytes >= minFreeBytes
      ? ok('disk', `${fmtBytes(freeBytes)} free at ${p}`)
      : fail('disk', `only ${fmtBytes(freeBytes)} free at ${p}, need ${fmtBytes(minFreeBytes)} (image build + pre-deploy backup)`, { file: p, fix: 'free space: docker image prune; node scripts/backup.mts --keep-daily 7 ...; or pass --min-free-mb' }));
  }
  r.push(...checkStack(o));
  return r;
}

/** The stack's own files as the engine reads them: compose config and the Caddyfile (preflightStack). */
export function checkStack(o: Pick<SystemObservation, 'composeConfig' | 'caddyfile'>): CheckResult[] {
  const r: CheckResult[] = [];
  if (o.composeConfig) {
    r.push(o.composeConfig.ok
      ? ok('compose config', 'docker compose config is valid')
      : fail('compose config', `docker compose config is invalid: ${firstLine(o.composeConfig.output)}`, { file: 'docker-compose.yml', fix: 'run: docker compose --env-file <env file> config   and fix the reported line' }));
  }
  if (o.caddyfile) {
    const f = o.caddyfile.file ?? 'docker/caddy/Caddyfile';
    if (o.caddyfile.skipped) r.push(warn('caddyfile', `not validated: ${o.caddyfile.skipped}`, { file: f }));
    else r.push(o.caddyfile.ok
      ? ok('caddyfile', 'caddy validate: valid', { file: f })
      : fail('caddyfile', `caddy validate failed: ${lastLines(o.caddyfile.output)}`, { file: f, fix: `fix ${f} (or the env values it reads) and re-run preflight` }));
  }
  return r;
}

// ---- offsite (issue 9) ---------------------------------------------------------------------------

export const MIN_RESTIC_VERSION = [0, 17, 0] as const;

export interface ResticObservation {
  bin: string;
  ok: boolean;
  version?: string;
  error?: string;
}

/** Offsite keys (judged by offsite/config.mts) and restic's presence and version; nothing when offsite is off. */
export function checkOffsite(enabled: boolean, problems: { key: string; message: string; fix: string }[], restic: ResticObservation | null, file: string): CheckResult[] {
  const r: CheckResult[] = problems.map((p) => fail(`key ${p.key}`, p.message, { key: p.key, file, fix: p.fix }));
  if (!enabled) return r;
  if (!problems.length) r.push(ok('offsite config', 'OFFSITE_* keys and their files are in order', { file }));
  if (restic) {
    const v = parseVersion(restic.version ?? '');
    if (!restic.ok || !v) r.push(fail('restic', `restic (${restic.bin}) does not run: ${firstLine(restic.error)}`, { fix: 'install restic >= 0.17: sudo bash scripts/prepare-vps.sh (RUNBOOK: VPS preparation), or set OFFSITE_RESTIC=/path/to/restic' }));
    else if (!versionAtLeast(v, MIN_RESTIC_VERSION)) r.push(fail('restic', `restic ${v.join('.')} is older than ${MIN_RESTIC_VERSION.join('.')} (exit codes 10/11/12, sftp.args, RESTIC_REST_USERNAME)`, { fix: 'install restic >= 0.17: sudo bash scripts/prepare-vps.sh installs the release binary (RUNBOOK: VPS preparation)' }));
    else r.push(ok('restic', `restic ${v.join('.')}`));
  }
  return r;
}

async function observeRestic(values: Record<string, string>): Promise<ResticObservation> {
  const { $ } = await import('zx');
  const bin = values.OFFSITE_RESTIC || process.env.LAZYFLOW_RESTIC_BIN || 'restic';
  try {
    const r = await $({ quiet: true, nothrow: true, timeout: 20_000 })`${bin} version`;
    return { bin, ok: r.exitCode === 0, version: r.stdout.trim(), error: r.stderr.trim() };
  } catch (e) {
    return { bin, ok: false, error: (e as Error).message };
  }
}

export function preflightPassed(results: CheckResult[]): boolean {
  return results.every((r) => r.ok);
}

function firstLine(s?: string): string {
  return (s ?? '').trim().split('\n')[0]?.slice(0, 300) ?? '';
}

function lastLines(s?: string, n = 3): string {
  const lines = (s ?? '').trim().split('\n').filter(Boolean);
  const errors = lines.filter((l) => /^Error\b/.test(l));
  return (errors.length ? errors : lines).slice(-n).join(' | ').slice(0, 500);
}

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i ? 1 : 0)} ${u[i]}`;
}

/** Free bytes on the filesystem holding `p` (or its nearest existing parent). */
export function freeBytesAt(p: string): { path: string; freeBytes: number } {
  let cur = path.resolve(p);
  while (!fs.existsSync(cur) && path.dirname(cur) !== cur) cur = path.dirname(cur);
  const st = fs.statfsSync(cur);
  return { path: cur, freeBytes: Number(st.bavail) * Number(st.bsize) };
}

export function observeEnvFile(file: string, parse: (text: string) => Record<string, string>, exampleFile?: string): EnvObservation {
  let exists = true;
  let mode: number | undefined;
  let values: Record<string, string> = {};
  try {
    mode = fs.statSync(file).mode & 0o777;
    values = parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') exists = false;
    else throw e;
  }
  let example: Record<string, string> | undefined;
  if (exampleFile && fs.existsSync(exampleFile)) example = parse(fs.readFileSync(exampleFile, 'utf8'));
  return { file, exists, mode, values, example, exampleFile };
}

// ---- collection (I/O) -------------------------------------------------------------------------

export interface PreflightOptions {
  /** minimum free disk in STATE_DIR (default 2 GiB: an image build plus a pre-deploy backup) */
  minFreeBytes?: number;
  /** skip the docker-based checks (engine, compose config, Caddyfile) */
  envOnly?: boolean;
  /** run `caddy validate` (default true) */
  caddy?: boolean;
  /** override the Caddyfile validated (default <projectDir>/docker/caddy/Caddyfile) */
  caddyfile?: string;
  /** report the safety net (default true; the rollout installs it instead: schedules/net.mts) */
  net?: boolean;
}

/** pure: the safety net as a preflight line (a warning when recovery would not run: it never blocks a deploy) */
export function checkNet(v: { inPlace: boolean; state: string; detail: string; next: string | null } | { error: string }, bad: string | null, envFile: string): CheckResult[] {
  if (bad !== null) return [{ name: 'safety net', ok: false, level: 'error', key: 'LAZYFLOW_SAFETY_NET', file: envFile, message: `LAZYFLOW_SAFETY_NET=${bad} is neither auto nor off`, fix: `remove the line (auto: the rollout installs recovery), or set LAZYFLOW_SAFETY_NET=off if you run recovery yourself (RUNBOOK "The safety net")` }];
  if ('error' in v) return [{ name: 'safety net', ok: true, level: 'warn', message: `cannot read the schedules: ${v.error}` }];
  if (v.inPlace || v.state === 'off') return [{ name: 'safety net', ok: true, level: 'ok', message: v.detail }];
  return [{ name: 'safety net', ok: true, level: 'warn', message: `${v.detail}; the next rollout installs it before its swap${v.next ? `, or now: ${v.next}` : ''}`, ...(v.next ? { fix: v.next } : {}) }];
}

export interface ComposeService {
  image?: string;
  environment?: Record<string, string | null>;
  volumes?: { type: string; source?: string; target: string; read_only?: boolean }[];
}

/** which of the engine and Compose answered in preflightHost */
export interface EngineSeen {
  docker: boolean;
  compose: boolean;
}

type PreflightEnv = { file: string; values: Record<string, string>; projectDir: string; envFile: string; project: string; composeFiles: string[]; stateDir: string };

/** Everything preflight needs, gathered; then judged by checkEnv + checkSystem. */
export async function runPreflight(env: PreflightEnv, opts: PreflightOptions = {}): Promise<CheckResult[]> {
  const { results, values, engine } = await preflightHost(env, opts);
  if (opts.envOnly) return results;
  return [...results, ...(await preflightStack(env, values, engine, opts))];
}

/**
 * Preflight's first part: the env file, the app's keys, the bot's shape, offsite, and the engine and
 * Compose themselves (what every later step needs, so their failure is named before anything runs).
 * `values`: the env file as read; `engine`: which of docker and compose answered (what preflightStack may ask).
 */
export async function preflightHost(env: PreflightEnv, opts: PreflightOptions = {}): Promise<{ results: CheckResult[]; values: Record<string, string>; engine: EngineSeen }> {
  const { parseEnvText } = await import('../config/env.mts');
  const results: CheckResult[] = [];
  const exampleFile = path.join(env.projectDir, '.env.prod.example');
  const envObs = observeEnvFile(env.file, (t) => parseEnvText(t, env.file), exampleFile);
  results.push(...checkEnv(envObs));
  results.push(...checkAlertChannels(envObs.values, env.file)); // issue 10: alert channels
  results.push(...checkAppEnv(envObs.values, env.file)); // issue 8: the app's own keys
  results.push(...checkStackKeys(envObs.values, env.file));
  results.push(await observeShape(env, envObs.values, opts.envOnly)); // issue 18: the bot's shape
  const { readContractCache, stillMissingKeys } = await import('../release/contract-gate.mts');
  results.push(...checkMissingAppKeys(stillMissingKeys(readContractCache(env.stateDir), envObs.values), env.file));
  // offsite (issue 9)
  const { offsiteProblems, offsiteEnabled, observeFile } = await import('../offsite/config.mts');
  const offsiteOn = offsiteEnabled(envObs.values);
  let restic: ResticObservation | null = null;
  if (offsiteOn && !opts.envOnly) restic = await observeRestic(envObs.values);
  results.push(...checkOffsite(offsiteOn, offsiteProblems(envObs.values, env.stateDir, env.file, observeFile, env.projectDir), restic, env.file));
  if (opts.envOnly) return { results, values: envObs.values, engine: { docker: false, compose: false } };

  const { $ } = await import('zx');
  const { composeEnv } = await import('../commands/compose.mts');
  const q = $({ quiet: true, nothrow: true, env: composeEnv(env.values) });
  // independent round trips at once
  const [dockerV, composeV] = await Promise.all([q`docker version --format {{.Server.Version}}`, q`docker compose version --short`]);
  const sys: SystemObservation = {
    docker: { ok: dockerV.exitCode === 0, serverVersion: dockerV.stdout.trim(), error: dockerV.stderr.trim() },
    compose: { ok: composeV.exitCode === 0, version: composeV.stdout.trim().replace(/^v/, ''), error: composeV.stderr.trim() },
    nodeVersion: process.versions.node,
    disk: { ...freeBytesAt(env.stateDir), minFreeBytes: opts.minFreeBytes ?? 2 * 2 ** 30 },
  };
  results.push(...checkSystem(sys));
  return { results, values: envObs.values, engine: { docker: sys.docker.ok, compose: sys.compose.ok } };
}

/**
 * Preflight's second part: what the engine says of the stack (compose config, `caddy validate` in a
 * throwaway container, the safety net, STATE_DIR's filesystems). It reads and changes nothing a build
 * touches, so a rollout runs it beside the image build (release/rollout.mts) and judges it before the
 * pre-deploy backup; `--check`, `--dry-run` and rollback run it right after preflightHost.
 */
export async function preflightStack(env: PreflightEnv, values: Record<string, string>, engine: EngineSeen, opts: PreflightOptions = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const { $ } = await import('zx');
  const { composeArgs, composeEnv } = await import('../commands/compose.mts');
  const q = $({ quiet: true, nothrow: true, env: composeEnv(env.values) });
  const stack: Pick<SystemObservation, 'composeConfig' | 'caddyfile'> = {};
  // the compose config and Caddyfile, and the engine's OS (the state layout's check), at once
  const [, os] = await Promise.all([
    (async () => {
      if (!engine.docker || !engine.compose) return;
      const cfg = await q`docker ${composeArgs(env, 'config', '--format', 'json')}`;
      stack.composeConfig = { ok: cfg.exitCode === 0, output: cfg.stderr.trim() || cfg.stdout.slice(0, 300) };
      // a polling bot runs no Caddy (bot shape polling): no Caddyfile to validate
      if (cfg.exitCode === 0 && opts.caddy !== false && !pollingBot(values)) {
        stack.caddyfile = await validateCaddyfile(env, JSON.parse(cfg.stdout) as { services: Record<string, ComposeService> }, opts.caddyfile);
      }
    })(),
    (async () => (engine.docker && fs.existsSync(env.stateDir) ? (await q`docker info --format {{.OperatingSystem}}`).stdout.trim() : undefined))(),
  ]);
  results.push(...checkStack(stack));
  if (opts.net !== false) {
    const { netVerdict, badNetSetting } = await import('../schedules/net.mts');
    const { stateLayout } = await import('../config/state.mts');
    const v = await netVerdict({ ...env, layout: stateLayout(env.stateDir) }).catch((e: unknown) => ({ error: e instanceof Error ? e.message : String(e) }));
    results.push(...checkNet(v, badNetSetting(values), env.file));
  } else {
    const { badNetSetting } = await import('../schedules/net.mts');
    const bad = badNetSetting(values);
    if (bad !== null) results.push(...checkNet({ error: '' }, bad, env.file));
  }
  if (fs.existsSync(env.stateDir)) {
    const root = path.resolve(env.stateDir);
    const layout = { root, data: path.join(root, 'data'), uploads: path.join(root, 'uploads'), backups: path.join(root, 'backups') };
    results.push(...checkStateLayout(await observeStateLayoutWith(layout, os)));
  }
  return results;
}

/** Image refs that exist locally, in order of preference. */
async function firstLocalImage(refs: string[]): Promise<string | undefined> {
  const { $ } = await import('zx');
  for (const ref of refs) {
    if (!ref) continue;
    const r = await $({ quiet: true, nothrow: true })`docker image inspect --format {{.Id}} ${ref}`;
    if (r.exitCode === 0) return ref;
  }
  return undefined;
}

/**
 * `caddy validate` of the Caddyfile on disk, with the caddy service's environment and bind mounts as
 * compose resolves them (so {$DOMAIN}, ACME roots etc. are real), in a throwaway container with no
 * network. Uses the stack's proxy image, else the Caddy base image, when present locally.
 */
export async function validateCaddyfile(
  env: { projectDir: string; values: Record<string, string> },
  config: { services: Record<string, ComposeService> },
  caddyfileOverride?: string,
): Promise<NonNullable<SystemObservation['caddyfile']>> {
  const { $ } = await import('zx');
  const file = caddyfileOverride ?? path.join(env.projectDir, 'docker', 'caddy', 'Caddyfile');
  const svc = config.services?.caddy;
  if (!svc) return { ok: false, file, output: 'no caddy service in the compose config' };
  if (!fs.existsSync(file)) return { ok: false, file, output: `${file} does not exist` };
  const image = await firstLocalImage([svc.image ?? '', env.values.CADDY_IMAGE ?? '', process.env.CADDY_IMAGE ?? '']);
  if (!image) return { ok: true, file, skipped: `no Caddy image present locally yet (${svc.image}); it is validated when the proxy image is built` };
  const args = ['run', '--rm', '--network', 'none', '--entrypoint', 'caddy'];
  for (const [k, v] of Object.entries(svc.environment ?? {})) if (v !== null && v !== undefined) args.push('-e', `${k}=${v}`);
  for (const vol of svc.volumes ?? []) {
    if (vol.type === 'bind' && vol.source && fs.existsSync(vol.source)) args.push('-v', `${vol.source}:${vol.target}:ro`);
  }
  args.push('-v', `${path.resolve(file)}:/etc/caddy/Caddyfile:ro`, image, 'validate', '--config', '/etc/caddy/Caddyfile', '--adapter', 'caddyfile');
  const r = await $({ quiet: true, nothrow: true })`docker ${args}`;
  return { ok: r.exitCode === 0, file, output: (r.stderr + r.stdout).trim() };
}

/** Exit code for a failed preflight: 2 when the env file is wrong (config), 1 when the machine is. */
export function preflightExitCode(results: CheckResult[]): number {
  const failed = results.filter((r) => !r.ok);
  if (!failed.length) return 0;
  return failed.some((r) => r.key || r.name.startsWith('env file')) ? 2 : 1;
}

// ---- alerts (issue 10: notification channels, the watch, the heartbeat) -----------------------------

/** ADMIN_CHAT_ID / ALERT_BOT_TOKEN / ALERT_WEBHOOK_URL / HEARTBEAT_URL / WATCH_*: well-formed, and at least one channel. */
export function checkAlertChannels(values: Record<string, string | undefined>, file = '.env.prod'): CheckResult[] {
  const out: CheckResult[] = [];
  const v = (k: string) => (values[k] ?? '').trim();
  const chat = v('ADMIN_CHAT_ID');
  const token = v('ALERT_BOT_TOKEN') || v('BOT_TOKEN');
  if (chat && !/^-?\d{1,19}$/.test(chat) && !/^@[A-Za-z][A-Za-z0-9_]{4,}$/.test(chat)) {
    out.push(fail('alerts', `ADMIN_CHAT_ID "${truncate(chat)}" is neither a numeric chat id nor an @channel name`, { key: 'ADMIN_CHAT_ID', file, fix: 'send /start to the bot, then read "chat":{"id":...} from getUpdates, and set ADMIN_CHAT_ID=<that number>' }));
  }
  if (v('ALERT_BOT_TOKEN') && !BOT_TOKEN_RE.test(v('ALERT_BOT_TOKEN'))) {
    out.push(fail('alerts', 'ALERT_BOT_TOKEN does not look like a bot token (digits:letters, from @BotFather)', { key: 'ALERT_BOT_TOKEN', file, fix: `set ALERT_BOT_TOKEN from @BotFather, or remove it to alert through BOT_TOKEN in ${file}` }));
  }
  if (chat && !token) out.push(warn('alerts', 'ADMIN_CHAT_ID is set but neither BOT_TOKEN nor ALERT_BOT_TOKEN: no Telegram alerts', { key: 'ALERT_BOT_TOKEN', file, fix: `set ALERT_BOT_TOKEN in ${file}` }));
  for (const key of ['ALERT_WEBHOOK_URL', 'HEARTBEAT_URL']) {
    const raw = v(key);
    if (!raw) continue;
    let u: URL | undefined;
    try {
      u = new URL(raw);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
      out.push(fail('alerts', `${key} is not an http(s) URL`, { key, file, fix: `set ${key}=https://... in ${file}, or remove it` }));
    } else if (u.protocol === 'http:' && !isLocalHost(u.hostname)) {
      out.push(warn('alerts', `${key} uses plain http to ${u.hostname}: the URL's secret travels in clear`, { key, file, fix: `use https:// for ${key}` }));
    }
  }
  for (const key of ['WATCH_REMIND_AFTER', 'WATCH_INTERVAL', 'WATCH_BACKUP_MAX_AGE', 'WATCH_OFFSITE_MAX_AGE']) {
    const raw = v(key);
    if (raw && !/^\d+(\.\d+)?\s*(ms|s|m|min|h|d)?$/.test(raw)) out.push(fail('alerts', `${key}="${truncate(raw)}" is not a duration (e.g. 90s, 15m, 6h, 2d)`, { key, file, fix: `set ${key}=6h in ${file}` }));
  }
  for (const key of ['WATCH_CONFIRM_RUNS', 'WATCH_CERT_DAYS', 'WATCH_MIN_FREE_MB']) {
    const raw = v(key);
    if (raw && !/^[1-9]\d*$/.test(raw)) out.push(fail('alerts', `${key}="${truncate(raw)}" must be a whole number >= 1`, { key, file, fix: `fix ${key} in ${file}` }));
  }
  const channels = (chat && token ? 1 : 0) + (v('ALERT_WEBHOOK_URL') ? 1 : 0);
  if (!out.some((r) => !r.ok)) {
    out.push(channels
      ? ok('alerts', `alert channel(s): ${[chat && token ? `Telegram chat ${chat}` : '', v('ALERT_WEBHOOK_URL') ? 'webhook' : ''].filter(Boolean).join(', ')}${v('HEARTBEAT_URL') ? ', heartbeat' : ''}`)
      : warn('alerts', 'no alert channel: failed backups, outages and expiring certificates reach nobody', { key: 'ADMIN_CHAT_ID', file, fix: `set ADMIN_CHAT_ID (and BOT_TOKEN or ALERT_BOT_TOKEN) or ALERT_WEBHOOK_URL in ${file}` }));
  }
  return out;
}

// ---- STATE_DIR layout -------------------------------------------------------------------------
// A restore moves data/ and uploads/ aside by rename (cannot cross filesystems), backups are built
// from hard links, and the online snapshot relies on SQLite's POSIX locks, which network and FUSE
// filesystems (and Docker Desktop's file sharing) do not honour. Refused here, before anything stops.

export interface PathObservation {
  path: string;
  exists: boolean;
  /** the mount it is on (longest match in /proc/self/mountinfo) */
  mountPoint: string;
  fsType: string;
  /** st_dev; NaN when it does not exist */
  dev: number;
}

export interface LayoutObservation {
  root: PathObservation;
  data: PathObservation;
  uploads: PathObservation;
  backups: PathObservation;
  /** `docker info` OperatingSystem, when known ("Docker Desktop" shares host files through a VM) */
  dockerOperatingSystem?: string;
}

/** filesystems whose locking SQLite cannot rely on (network, FUSE, VM file sharing) */
export function isSharedFs(fsType: string): boolean {
  return /^(nfs4?|cifs|smb3?|smbfs|9p|afs|ceph|glusterfs|lustre|drvfs|virtiofs|fuse(\..+|blk|ctl)?|osxfs|grpcfuse|fakeowner)$/.test(fsType);
}

/** filesystems without hard links */
export function lacksHardLinks(fsType: string): boolean {
  return /^(vfat|msdos|exfat|fat|iso9660)$/.test(fsType) || isSharedFs(fsType);
}

export function checkStateLayout(o: LayoutObservation): CheckResult[] {
  const r: CheckResult[] = [];
  const root = o.root.path;
  if (/docker desktop/i.test(o.dockerOperatingSystem ?? '')) {
    r.push(fail('state dir filesystem', `the Docker engine is Docker Desktop: ${root} reaches the app through its file-sharing VM, whose locking SQLite cannot rely on`, {
      file: root, fix: 'run the stack on a Linux host with Docker Engine (RUNBOOK: VPS preparation); Docker Desktop is for trying it out only',
    }));
  }
  if (isSharedFs(o.root.fsType)) {
    r.push(fail('state dir filesystem', `STATE_DIR ${root} is on ${o.root.fsType} (${o.root.mountPoint}): SQLite's locking does not work there, online backups could copy a torn database`, {
      key: 'STATE_DIR', file: root, fix: 'put STATE_DIR on a local filesystem (ext4, xfs, btrfs), e.g. STATE_DIR=/srv/lazyflow-state, and move the directory there with the app stopped',
    }));
  }
  for (const item of ['data', 'uploads'] as const) {
    const p = o[item];
    if (!p.exists) continue;
    const ownMount = p.mountPoint === p.path || (Number.isFinite(p.dev) && Number.isFinite(o.root.dev) && p.dev !== o.root.dev);
    if (ownMount) {
      r.push(fail(`state dir ${item}`, `${p.path} is its own mount point (${p.fsType}): a restore moves ${item}/ aside by rename, which cannot cross filesystems`, {
        key: 'STATE_DIR', file: p.path, fix: `mount the filesystem at STATE_DIR (${root}) itself instead of at ${item}/: stop the app, copy ${item}/ onto the STATE_DIR filesystem, unmount, remove the fstab line`,
      }));
    } else if (isSharedFs(p.fsType)) {
      r.push(fail(`state dir ${item}`, `${p.path} is on ${p.fsType}`, { file: p.path, fix: 'put STATE_DIR on a local filesystem' }));
    }
  }
  const b = o.backups;
  if (b.exists) {
    if (lacksHardLinks(b.fsType)) {
      r.push(fail('state dir backups', `${b.path} is on ${b.fsType} (${b.mountPoint}), which has no reliable hard links or locking: backups share unchanged uploads by hard link`, {
        file: b.path, fix: `keep backups/ on a local filesystem (ext4, xfs); copy backups off the host with restic instead (RUNBOOK: Offsite)`,
      }));
    } else if (Number.isFinite(b.dev) && Number.isFinite(o.root.dev) && b.dev !== o.root.dev) {
      r.push(warn('state dir backups', `${b.path} is on another filesystem (${b.mountPoint}) than STATE_DIR: the drill copies uploads instead of hard-linking them (slower, needs their size free in STATE_DIR)`, { file: b.path }));
    }
  }
  if (!r.some((x) => !x.ok)) r.push(ok('state dir layout', `${root} on ${o.root.fsType}; data/ and uploads/ on the same filesystem`));
  return r;
}

export function observePath(p: string, info: (p: string) => { mountPoint: string; fsType: string }): PathObservation {
  const exists = fs.existsSync(p);
  const near = exists ? p : path.dirname(p);
  const i = info(near);
  let dev = NaN;
  try {
    dev = Number(fs.statSync(near).dev);
  } catch {
    /* missing: NaN */
  }
  return { path: p, exists, mountPoint: i.mountPoint, fsType: i.fsType, dev };
}

export async function observeStateLayoutWith(layout: { root: string; data: string; uploads: string; backups: string }, dockerOperatingSystem?: string): Promise<LayoutObservation> {
  return { ...observeStateLayout(layout), dockerOperatingSystem };
}

export function observeStateLayout(layout: { root: string; data: string; uploads: string; backups: string }): LayoutObservation {
  // fsInfo lives in host/fsutil.mts; imported lazily there would make this async, so read mountinfo here
  const info = (p: string) => mountOf(p);
  return { root: observePath(layout.root, info), data: observePath(layout.data, info), uploads: observePath(layout.uploads, info), backups: observePath(layout.backups, info) };
}

function mountOf(p: string): { mountPoint: string; fsType: string } {
  let best = { mountPoint: '/', fsType: '?' };
  let real = p;
  try {
    real = fs.realpathSync(p);
  } catch {
    /* keep p */
  }
  try {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      if (!line) continue;
      const [left, right] = line.split(' - ');
      const mp = left.split(' ')[4].replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      const fsType = (right ?? '').split(' ')[0];
      const within = real === mp || real.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
      if (within && mp.length >= best.mountPoint.length) best = { mountPoint: mp, fsType };
    }
  } catch {
    /* not Linux */
  }
  return best;
}
