// Pure evaluators of the smoke checks: observed facts in, {status, detail} out. No I/O here, so every
// threshold is unit-tested with fixed inputs and a fixed clock (test/unit/smoke-*.test.ts).
import type { DrainStatus } from '../docker/drain.mts';
import { RUNBOOK_CONTRACT, recommendedNotice } from '../contract/items.mts';

export type SmokeStatus = 'pass' | 'warn' | 'fail' | 'skip';
export interface Verdict {
  status: SmokeStatus;
  detail: string;
}
export interface SmokeResult extends Verdict {
  name: string;
  ms?: number;
}

const pass = (detail: string): Verdict => ({ status: 'pass', detail });
const warn = (detail: string): Verdict => ({ status: 'warn', detail });
const fail = (detail: string): Verdict => ({ status: 'fail', detail });
const skip = (detail: string): Verdict => ({ status: 'skip', detail });

export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;

/** Worst status wins: fail > warn > pass > skip. */
export function worst(vs: Verdict[]): Verdict {
  const rank: Record<SmokeStatus, number> = { skip: 0, pass: 1, warn: 2, fail: 3 };
  let w: Verdict = skip('nothing checked');
  for (const v of vs) if (rank[v.status] > rank[w.status]) w = v;
  const sameRank = vs.filter((v) => v.status === w.status).map((v) => v.detail);
  return { status: w.status, detail: sameRank.join('; ') };
}

// ---- containers -------------------------------------------------------------------------------

export { parseComposePs } from '../commands/compose.mts';

export interface PsRow {
  Service: string;
  State: string; // running, exited, restarting, ...
  Health?: string; // healthy, unhealthy, starting, ''
  Name?: string;
  Image?: string;
}

/** STATE_DIR/proxy/draining (docker/drain.mts), with the command that removes a stale one. */
export type DrainObs = DrainStatus & { next: string };

export function evalContainers(rows: PsRow[], services = ['app', 'caddy'], drain: DrainObs | null = null): Verdict {
  const out: Verdict[] = [];
  if (drain && !drain.ownerAlive) out.push(fail(`STATE_DIR/proxy/draining, left by "${drain.what}" (since ${drain.since}) whose process is gone: Caddy holds every request to the app while it exists; next: ${drain.next}`));
  else if (drain) out.push(warn(`a drain is in progress ("${drain.what}", since ${drain.since}): Caddy holds requests to the app until the old container has stopped`));
  for (const s of services) {
    const mine = rows.filter((r) => r.Service === s);
    const running = mine.filter((r) => r.State === 'running');
    if (running.length === 0) {
      out.push(fail(`${s}: not running${mine.length ? ` (${mine.map((r) => r.State).join(', ')})` : ' (no container)'}`));
    } else if (running.length > 1) {
      out.push(fail(`${s}: ${running.length} containers running, expected exactly one`));
    } else {
      const h = running[0].Health ?? '';
      if (h === 'healthy' || h === '') out.push(pass(`${s} running${h ? ' healthy' : ' (no healthcheck)'}`));
      else if (h === 'starting') out.push(warn(`${s} running, health "starting"`));
      else out.push(fail(`${s} running but ${h}`));
    }
  }
  return worst(out);
}

// ---- /health ----------------------------------------------------------------------------------

export interface HttpObs {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  error?: string;
}

/** The app container that runs now, as the health check compares it with the release when /health has no version. */
export interface RunningApp {
  /** image reference it was created from (lazyflow-app:<tag>) */
  imageRef: string;
  tag: string;
  status: string;
}

const HEALTH_VERSION = 'health-version (recommended, RUNBOOK.md#the-app-contract)';

/** /health's JSON fields, or {} when the body is not a JSON object (the contract asks only for 200). */
export function healthFields(body: string): { status?: unknown; version?: unknown; db?: unknown } {
  try {
    const j = JSON.parse(body) as unknown;
    return j && typeof j === 'object' && !Array.isArray(j) ? (j as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * /health through Caddy: 200 (the required contract item), and the release answers. With a version in
 * /health it must be the release's; without one (the recommended item health-version is absent) the
 * running app container's image must be the release's, and the verdict says that is what was compared.
 */
export function evalHealth(r: HttpObs, expectedVersion?: string, running?: RunningApp | null): Verdict {
  if (r.error) return fail(`GET /health: ${r.error}`);
  const j = healthFields(r.body);
  if (r.status !== 200 || (j.status !== undefined && j.status !== 'ok')) return fail(`GET /health -> ${r.status} status=${String(j.status ?? '?')} db=${String(j.db ?? '?')}`);
  const db = j.db !== undefined ? `, db ${String(j.db)}` : '';
  if (typeof j.version === 'string' && j.version !== '') {
    if (expectedVersion && j.version !== expectedVersion) return fail(`/health reports version "${j.version}", expected "${expectedVersion}"`);
    return pass(`200 ok, version ${j.version}${expectedVersion ? ' (expected)' : ''}${db}`);
  }
  if (!expectedVersion) return pass(`200, no version in /health (${HEALTH_VERSION})${db}`);
  if (running && running.tag === expectedVersion && running.status === 'running') {
    return pass(`200; /health has no version (${HEALTH_VERSION}), so the running app container was compared instead: its image ${running.imageRef} is the release${db}`);
  }
  return fail(`/health has no version (${HEALTH_VERSION}) and the running app container is ${running ? `${running.imageRef} (${running.status})` : 'missing'}, not ${expectedVersion}`);
}

// ---- TLS ----------------------------------------------------------------------------------------

export interface TlsObs {
  error?: string; // connection or verification error
  authorized: boolean;
  authorizationError?: string;
  validTo?: string; // cert.valid_to, e.g. "Mar  1 12:00:00 2026 GMT"
  validFrom?: string;
  subjectAltNames?: string; // "DNS:a, DNS:b"
  issuer?: string;
}

export function certCovers(san: string | undefined, domain: string): boolean {
  if (!san) return false;
  const names = san.split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
  const d = domain.toLowerCase();
  return names.some((n) => n === d || (n.startsWith('*.') && d.endsWith(n.slice(1)) && d.split('.').length === n.split('.').length));
}

export function evalTls(o: TlsObs, domain: string, now: Date, warnDays = 14, failDays = 3): Verdict {
  if (o.error) return fail(`TLS handshake to ${domain} failed: ${o.error}`);
  if (!o.authorized) return fail(`certificate for ${domain} does not verify: ${o.authorizationError ?? 'unknown error'} (trust: ${o.issuer ? `issuer ${o.issuer}` : '?'}; pass --ca <root.pem> for a private CA)`);
  if (!certCovers(o.subjectAltNames, domain)) return fail(`certificate does not cover ${domain} (SAN: ${o.subjectAltNames ?? 'none'})`);
  const exp = o.validTo ? Date.parse(o.validTo) : NaN;
  if (!Number.isFinite(exp)) return fail(`certificate expiry unreadable: ${o.validTo}`);
  const days = (exp - now.getTime()) / DAY_MS;
  // Short-lived certificates (Caddy's internal CA: 12 h; Let's Encrypt's 6-day profile) can never
  // have 14 days left: judge them against their lifetime instead. Caddy renews at 1/3 remaining,
  // so under 1/4 left means renewal is overdue, under 1/10 that it is failing.
  const from = o.validFrom ? Date.parse(o.validFrom) : NaN;
  const lifetimeDays = Number.isFinite(from) ? (exp - from) / DAY_MS : NaN;
  if (Number.isFinite(lifetimeDays) && lifetimeDays < 2 * warnDays) {
    const left = `${(days * 24).toFixed(1)} h of a ${(lifetimeDays * 24).toFixed(0)} h lifetime left`;
    if (days < lifetimeDays / 10) return fail(`short-lived certificate nearly expired: ${left}; renewal is failing, see caddy logs`);
    if (days < lifetimeDays / 4) return warn(`short-lived certificate renewal overdue: ${left}`);
    return pass(`valid for ${domain}, chain verifies, short-lived certificate with ${left}${o.issuer ? `, issuer ${o.issuer}` : ''}`);
  }
  const d = days.toFixed(1);
  if (days < failDays) return fail(`certificate expires in ${d} days (< ${failDays}): renewal is failing, see caddy logs`);
  if (days < warnDays) return warn(`certificate expires in ${d} days (< ${warnDays}); Caddy renews at 1/3 of lifetime, check caddy logs`);
  return pass(`valid for ${domain}, chain verifies, expires in ${d} days${o.issuer ? `, issuer ${o.issuer}` : ''}`);
}

// ---- redirect -------------------------------------------------------------------------------------

export function evalRedirect(r: HttpObs, domain: string): Verdict {
  if (r.error) return fail(`GET http://${domain}/: ${r.error}`);
  const loc = String(r.headers.location ?? '');
  if (![301, 302, 307, 308].includes(r.status)) return fail(`GET http://${domain}/ -> ${r.status}, expected a redirect to https`);
  if (!loc.startsWith(`https://${domain}`)) return fail(`http redirects to "${loc}", expected https://${domain}/...`);
  return pass(`http -> ${r.status} ${loc}`);
}

// ---- security headers ----------------------------------------------------------------------------

export const REQUIRED_HEADERS: Record<string, (v: string) => boolean> = {
  'strict-transport-security': (v) => /max-age=\d{7,}/.test(v),
  'x-content-type-options': (v) => v.toLowerCase() === 'nosniff',
  'referrer-policy': (v) => v.length > 0,
  'content-security-policy': (v) => /default-src/.test(v) && /frame-ancestors/.test(v),
};

export function evalSecurityHeaders(responses: { path: string; r: HttpObs }[]): Verdict {
  const problems: string[] = [];
  for (const { path, r } of responses) {
    if (r.error) {
      problems.push(`${path}: ${r.error}`);
      continue;
    }
    for (const [h, okFn] of Object.entries(REQUIRED_HEADERS)) {
      const v = r.headers[h];
      if (v === undefined) problems.push(`${path}: missing ${h}`);
      else if (!okFn(String(v))) problems.push(`${path}: weak ${h}: ${String(v).slice(0, 60)}`);
    }
    if (r.headers['server'] !== undefined) problems.push(`${path}: sends Server: ${r.headers['server']}`);
    if (r.headers['x-powered-by'] !== undefined) problems.push(`${path}: sends X-Powered-By: ${r.headers['x-powered-by']}`);
  }
  return problems.length ? fail(problems.join('; ')) : pass(`HSTS, nosniff, Referrer-Policy, CSP on ${responses.map((x) => x.path).join(', ')}; no Server header`);
}

// ---- CORS -------------------------------------------------------------------------------------------

export function evalCors(o: { allowedOrigin: string; allowed: HttpObs; other: HttpObs; otherOrigin: string }): Verdict {
  const problems: string[] = [];
  const acao = (r: HttpObs) => (r.headers['access-control-allow-origin'] as string | undefined) ?? '';
  // An app without CORS answers the preflight with no Access-Control-* header for any origin: fine
  // while the Mini App calls the API on its own origin; nothing is exposed, so it is a notice.
  const anyCors = (r: HttpObs) => Object.keys(r.headers).some((h) => h.toLowerCase().startsWith('access-control-'));
  if (!o.allowed.error && !o.other.error && !anyCors(o.allowed) && !anyCors(o.other)) {
    return skip(`the app answers no CORS preflight (OPTIONS /me -> ${o.allowed.status}, no Access-Control-* header for any origin): fine while the Mini App calls the API on its own origin; one on another origin needs CORS for ALLOWED_ORIGINS (cors, RUNBOOK.md#also-relied-on)`);
  }
  if (o.allowed.error) problems.push(`preflight from ${o.allowedOrigin}: ${o.allowed.error}`);
  else if (acao(o.allowed) !== o.allowedOrigin) problems.push(`allowed origin ${o.allowedOrigin} not answered (Access-Control-Allow-Origin: "${acao(o.allowed)}")`);
  if (o.other.error) problems.push(`preflight from ${o.otherOrigin}: ${o.other.error}`);
  else if (acao(o.other)) problems.push(`foreign origin ${o.otherOrigin} answered with Access-Control-Allow-Origin: "${acao(o.other)}"`);
  if (acao(o.allowed) === '*' || acao(o.other) === '*') problems.push('wildcard Access-Control-Allow-Origin: *');
  return problems.length ? fail(problems.join('; ')) : pass(`${o.allowedOrigin} allowed, ${o.otherOrigin} not answered, no wildcard`);
}

// ---- webhook ----------------------------------------------------------------------------------------

export function evalWebhook(o: { get: HttpObs; postNoHeader: HttpObs }): Verdict {
  const problems: string[] = [];
  if (o.get.error) problems.push(`GET: ${o.get.error}`);
  else if (o.get.status < 400 || o.get.status >= 500) problems.push(`GET /webhook/<secret> -> ${o.get.status}, expected 404/405`);
  if (o.postNoHeader.error) problems.push(`POST: ${o.postNoHeader.error}`);
  else if (o.postNoHeader.status !== 401) problems.push(`POST /webhook/<secret> without the secret header -> ${o.postNoHeader.status}, expected 401`);
  return problems.length ? fail(problems.join('; ')) : pass(`GET -> ${o.get.status}, POST without secret header -> 401`);
}

// ---- upload privacy -------------------------------------------------------------------------------

/** unauth: GET /files/x, or absent for a bot without uploads (shape webhook): then only the URL guesses are judged. */
export function evalUploads(o: { unauth?: HttpObs; probes: { url: string; r: HttpObs }[]; canary: string }): Verdict {
  const problems: string[] = [];
  if (o.unauth?.error) problems.push(`GET /files/x: ${o.unauth.error}`);
  else if (o.unauth && o.unauth.status !== 401 && o.unauth.status !== 404) problems.push(`unauthenticated GET /files/x -> ${o.unauth.status}, expected 401 or 404`);
  const leaked = o.probes.filter((p) => !p.r.error && p.r.status === 200 && p.r.body.includes(o.canary));
  for (const p of leaked) problems.push(`uploads directory reachable: ${p.url} served an uploaded file`);
  if (problems.length) return fail(problems.join('; '));
  const guesses = `${o.probes.length} URL guesses for a file in the uploads directory all refused`;
  return pass(o.unauth ? `/files/x -> ${o.unauth.status} without auth; ${guesses}` : `no uploads route expected (bot shape webhook); ${guesses}`);
}

// ---- Telegram ----------------------------------------------------------------------------------------

export interface WebhookInfo {
  url: string;
  has_custom_certificate?: boolean;
  pending_update_count: number;
  last_error_date?: number; // unix seconds
  last_error_message?: string;
  ip_address?: string;
  max_connections?: number;
  allowed_updates?: string[];
}

export function expectedWebhookUrl(appUrl: string, secret: string): string {
  return `${appUrl.replace(/\/+$/, '')}/webhook/${secret}`;
}

export function redactSecret(s: string, secret: string): string {
  return secret ? s.split(secret).join('<secret>') : s;
}

/** startedAt: when the current app container started (errors before it belong to an older run). */
export function evalWebhookInfo(info: WebhookInfo, o: { expectedUrl: string; secret: string; startedAt?: Date; pendingMax: number }): Verdict {
  const problems: string[] = [];
  if (info.url !== o.expectedUrl) {
    problems.push(`webhook url is "${redactSecret(info.url, o.secret) || '(none)'}", expected "${redactSecret(o.expectedUrl, o.secret)}"`);
  }
  if (info.last_error_date && o.startedAt && info.last_error_date * 1000 >= o.startedAt.getTime() - 1000) {
    problems.push(`delivery error at ${new Date(info.last_error_date * 1000).toISOString()} (after the app started): ${info.last_error_message ?? '?'}`);
  }
  if (info.pending_update_count >= o.pendingMax) problems.push(`pending_update_count ${info.pending_update_count} >= ${o.pendingMax}`);
  if (problems.length) return fail(problems.join('; '));
  const older = info.last_error_date ? `; last error ${new Date(info.last_error_date * 1000).toISOString()} predates this start` : '';
  return pass(`url ok, pending ${info.pending_update_count}${older}`);
}

// ---- database -------------------------------------------------------------------------------------

export interface DbObs {
  error?: string;
  quickCheck?: string;
  journalMode?: string;
  userVersion?: number;
  uid?: number;
  mode?: number; // file mode & 0o777
  dirMode?: number;
}

export function evalDb(o: DbObs, appUid = 1000): Verdict {
  if (o.error) return fail(o.error);
  const problems: string[] = [];
  const warnings: string[] = [];
  if (o.quickCheck !== 'ok') problems.push(`quick_check: ${o.quickCheck}`);
  if ((o.journalMode ?? '').toLowerCase() !== 'wal') problems.push(`journal_mode is ${o.journalMode}, expected wal`);
  if (o.uid !== undefined && o.uid !== appUid) problems.push(`database owned by uid ${o.uid}, the app runs as ${appUid}: fix with chown ${appUid}:${appUid}`);
  if (o.mode !== undefined) {
    if (o.mode & 0o002) problems.push(`database is world-writable (mode ${o.mode.toString(8)}): chmod 640`);
    else if (o.mode & 0o004 && (o.dirMode === undefined || o.dirMode & 0o001)) warnings.push(`database is world-readable (mode ${o.mode.toString(8)}) in a traversable directory: chmod 640 or chmod 750 the data directory`);
  }
  if (problems.length) return fail(problems.join('; '));
  if (warnings.length) return warn(warnings.join('; '));
  return pass(`quick_check ok, WAL, user_version ${o.userVersion}, owner ${o.uid}, mode ${o.mode?.toString(8)}`);
}

// ---- jobs -------------------------------------------------------------------------------------------

/** lastTickAt: undefined when the app has no heartbeat at all (neither in /health nor a job_heartbeats table), null when it has one that never ticked. */
export function evalJobs(o: { lastTickAt: string | null | undefined; now: Date; maxAgeMs: number; startedAt?: Date }): Verdict {
  if (o.lastTickAt === undefined) {
    return skip(recommendedNotice({ id: 'jobs-heartbeat', status: 'missing', detail: 'neither /health jobs.lastTickAt nor a job_heartbeats table', runbook: RUNBOOK_CONTRACT }));
  }
  if (!o.lastTickAt) {
    if (o.startedAt && o.now.getTime() - o.startedAt.getTime() < o.maxAgeMs) return warn('no job tick yet (app just started)');
    return fail('the background jobs never ticked (jobs.lastTickAt is empty)');
  }
  const t = Date.parse(o.lastTickAt);
  if (!Number.isFinite(t)) return fail(`jobs.lastTickAt unreadable: ${o.lastTickAt}`);
  const age = o.now.getTime() - t;
  if (age > o.maxAgeMs) return fail(`last job tick ${(age / 1000).toFixed(1)} s ago (> ${(o.maxAgeMs / 1000).toFixed(0)} s): the background jobs are stalled`);
  return pass(`last tick ${(Math.max(0, age) / 1000).toFixed(1)} s ago`);
}

// ---- disk ---------------------------------------------------------------------------------------------

export function evalDisk(o: { path: string; freeBytes: number; totalBytes: number; minFreeBytes: number }): Verdict {
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  const pct = o.totalBytes ? (100 * o.freeBytes) / o.totalBytes : 100;
  const d = `${gib(o.freeBytes)} free (${pct.toFixed(0)}%) at ${o.path}`;
  if (o.freeBytes < o.minFreeBytes || pct < 5) return fail(`${d}: below ${gib(o.minFreeBytes)} / 5%`);
  if (o.freeBytes < 2 * o.minFreeBytes || pct < 10) return warn(`${d}: getting low`);
  return pass(d);
}

// ---- backups -------------------------------------------------------------------------------------------

export function evalBackupAge(o: { newest: { id: string; createdAt: string } | null; now: Date; warnAfterMs?: number }): Verdict {
  const limit = o.warnAfterMs ?? 26 * HOUR_MS;
  if (!o.newest) return warn('no backup yet: run node scripts/backup.mts and schedule it (RUNBOOK: cron)');
  const t = Date.parse(o.newest.createdAt);
  if (!Number.isFinite(t)) return warn(`newest backup ${o.newest.id} has an unreadable created_at`);
  const h = (o.now.getTime() - t) / HOUR_MS;
  if (o.now.getTime() - t > limit) return warn(`newest backup ${o.newest.id} is ${h.toFixed(1)} h old (> ${(limit / HOUR_MS).toFixed(0)} h): is the backup cron running?`);
  return pass(`newest backup ${o.newest.id}, ${h.toFixed(1)} h old`);
}

// ---- log rotation ---------------------------------------------------------------------------------------

export interface LogConfigObs {
  service: string;
  type?: string;
  config?: Record<string, string>;
  error?: string;
}

export function evalLogRotation(list: LogConfigObs[]): Verdict {
  const out: Verdict[] = [];
  for (const l of list) {
    if (l.error) out.push(fail(`${l.service}: ${l.error}`));
    else if (l.type === 'json-file') {
      const size = l.config?.['max-size'];
      out.push(size ? pass(`${l.service}: json-file max-size ${size} max-file ${l.config?.['max-file'] ?? '1'}`) : fail(`${l.service}: json-file without max-size, logs grow without bound`));
    } else if (l.type === 'local' || l.type === 'journald' || l.type === 'syslog') out.push(pass(`${l.service}: ${l.type} driver (rotated)`));
    else out.push(fail(`${l.service}: log driver ${l.type ?? '?'} without rotation settings`));
  }
  return worst(out);
}

// ---- Mini App -----------------------------------------------------------------------------------------------

export function evalMiniApp(o: { index: HttpObs; config: HttpObs; apiBase: string }): Verdict {
  const problems: string[] = [];
  if (o.index.error) problems.push(`GET /: ${o.index.error}`);
  else {
    if (o.index.status !== 200) problems.push(`GET / -> ${o.index.status}`);
    if (!/<html/i.test(o.index.body)) problems.push('GET / is not an HTML page');
    const csp = String(o.index.headers['content-security-policy'] ?? '');
    if (!csp) problems.push('index page without Content-Security-Policy');
    else if (!/telegram\.org/.test(csp)) problems.push('CSP does not allow Telegram (script or frame-ancestors)');
    const script = configScriptProblem(o.index.body);
    if (script) problems.push(script);
  }
  if (o.config.error) problems.push(`GET /config.js: ${o.config.error}`);
  else {
    if (o.config.status !== 200) problems.push(`GET /config.js -> ${o.config.status}`);
    if (!o.config.body.includes(o.apiBase)) problems.push(`/config.js does not carry the API base ${o.apiBase}: ${o.config.body.slice(0, 100)}`);
  }
  return problems.length ? fail(problems.join('; ')) : pass(`index with CSP, /config.js apiBase ${o.apiBase}`);
}

/**
 * A bot without a Mini App (shape webhook): `/` must not serve one, neither another release's nor the
 * one of some proxy image (RUNBOOK "Bot shapes"). Caddy's own 404, or any answer that is not a page.
 */
export function evalNoMiniApp(o: { index: HttpObs }): Verdict {
  if (o.index.error) return fail(`GET /: ${o.index.error}`);
  if (o.index.status === 200 && /<html/i.test(o.index.body)) {
    return fail('GET / serves an HTML page, but the bot has no Mini App (bot shape webhook): the proxy serves a front end that is not this app\'s; roll out again (the proxy image of this shape has none), or set BOT_SHAPE=webhook-miniapp with FRONTEND_DIR if the app has one');
  }
  return pass(`GET / -> ${o.index.status}: no Mini App served (bot shape webhook)`);
}

/**
 * The Mini App reads its API base from window.LAZYFLOW_API_BASE_URL, which Caddy's /config.js sets:
 * the index must load /config.js before the bundle that reads it (a classic script runs in document
 * order; a module or deferred one after the parse). An index without scripts of its own needs none.
 */
export function configScriptProblem(html: string): string | null {
  const scripts = [...html.matchAll(/<script\b([^>]*)>/gi)].map((m) => ({ attrs: m[1], src: /\bsrc\s*=\s*["']?([^"'\s>]+)/i.exec(m[1])?.[1] }));
  // the Mini App is served at /: config.js and ./config.js are /config.js too
  const isConfig = (src?: string) => Boolean(src && /^((https?:\/\/[^/]+)?\/|\.\/)?config\.js([?#].*)?$/.test(src));
  const own = (src?: string) => Boolean(src && !/^(https?:)?\/\//.test(src));
  const at = scripts.findIndex((x) => isConfig(x.src));
  const fix = 'add <script src="/config.js"></script> before the bundle\'s <script> in the Mini App\'s index.html (RUNBOOK "Adopting the toolkit")';
  if (at < 0) return scripts.some((x) => own(x.src)) ? `the index never loads /config.js, so window.LAZYFLOW_API_BASE_URL stays unset: ${fix}` : null;
  const early = scripts.slice(0, at).find((x) => own(x.src) && !/\btype\s*=\s*["']?module|\b(defer|async)\b/i.test(x.attrs));
  return early ? `the index loads /config.js after ${early.src}, which runs first without window.LAZYFLOW_API_BASE_URL: ${fix}` : null;
}

/**
 * The front end served is the live release's: /lazyflow-release.json (written by rollout into each
 * release's front end) names the app tag it was built with.
 */
export function evalFrontend(o: { marker: HttpObs; expected?: string; expectedStaged: boolean }): Verdict {
  if (o.marker.error) return fail(`GET /lazyflow-release.json: ${o.marker.error}`);
  let served: string | undefined;
  try {
    served = (JSON.parse(o.marker.body) as { appTag?: string }).appTag;
  } catch {
    /* the Mini App's index (no such file): a Caddy started before the first rollout */
  }
  if (o.marker.status !== 200 || !served) {
    return o.expected
      ? warn(`Caddy serves its image's own Mini App, not ${o.expected}'s (reload it from STATE_DIR/frontend/current, or roll out)`)
      : pass("no release yet: the Mini App baked into the proxy image");
  }
  if (!o.expected || served === o.expected) return pass(`the Mini App of ${served}`);
  if (!o.expectedStaged) return warn(`the Mini App of ${served} is served; ${o.expected} has no front end of its own (it predates per-release front ends)`);
  return fail(`the Mini App served is ${served}'s, the app runs ${o.expected}`);
}

/** Exit code of smoke: 1 when any check failed, else 0 (warnings allowed). */
export function smokeExitCode(results: SmokeResult[]): number {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

// ---- dead letters ---------------------------------------------------------------------------------

/**
 * What the app's `dead_letters` table holds: Telegram updates it gave up on (answered 200 so the
 * queue moves). `table: false` when the adopter's database has no such table: not every app keeps
 * dead letters, so that is a notice, never a problem.
 */
export type DeadLettersObs =
  | { error: string }
  | { table: false }
  | { table: true; count: number; newest?: { update_id?: number; failed_at?: string; last_error?: string } };

/** Dead letters never fail a check (a user who blocked the bot is not a broken release): warn with count and newest. */
export function evalDeadLetters(o: DeadLettersObs): Verdict {
  if ('error' in o) return skip(`dead letters not readable: ${o.error}`);
  if (!o.table) return skip('the database has no dead_letters table (the app keeps no dead letters)');
  if (o.count === 0) return pass('no dead letters');
  const n = o.newest;
  const newest = n
    ? `; newest: update ${n.update_id ?? '?'}${n.failed_at ? ` at ${n.failed_at}` : ''}${n.last_error ? ` (${String(n.last_error).slice(0, 120)})` : ''}`
    : '';
  return warn(`${o.count} dead letter(s)${newest}; see RUNBOOK "Dead letters" to list and clear them`);
}

// ---- routes (API_PATHS) -----------------------------------------------------------------------

export interface RouteProbe {
  pattern: string;
  path: string;
  r: HttpObs;
}

/** Each configured API path reaches the app: not the Mini App's index page, not a proxy error. */
export function evalRoutes(o: { index: HttpObs; probes: RouteProbe[] }): Verdict {
  const problems: string[] = [];
  const indexBody = o.index.error || !/<html/i.test(o.index.body) ? null : o.index.body;
  for (const p of o.probes) {
    if (!p.pattern.startsWith('/')) {
      problems.push(`API_PATHS entry "${p.pattern}" is not a path (each starts with /)`);
      continue;
    }
    if (p.r.error) problems.push(`GET ${p.path}: ${p.r.error}`);
    // 502/504: Caddy's dial or round trip failed; 503 with no body: Caddy had no healthy upstream (an app's own 503 says why)
    else if (p.r.status === 502 || p.r.status === 504 || (p.r.status === 503 && p.r.body.trim() === '')) problems.push(`GET ${p.path} -> ${p.r.status}: Caddy did not reach the app`);
    else if ((indexBody !== null && p.r.body === indexBody) || (/text\/html/.test(String(p.r.headers['content-type'] ?? '')) && /<html/i.test(p.r.body) && indexBody !== null && p.r.body.trim() === indexBody.trim())) {
      problems.push(`GET ${p.path} (${p.pattern}) answered with the Mini App's index page, not the app`);
    }
  }
  if (problems.length) {
    return fail(`${problems.join('; ')}; the proxy must route API_PATHS to the app: rebuild and restart the proxy (RUNBOOK.md#the-app-contract)`);
  }
  return pass(`${o.probes.length} API paths reach the app (${o.probes.map((p) => p.pattern).join(' ')})`);
}
