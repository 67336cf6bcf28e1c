// The app contract, in one place: what an app image must do for the stack and the toolkit to run it
// (required), and what it should do so that nothing degrades (recommended). Each item says what the
// operator loses without it, how the toolkit degrades, the fix, and its RUNBOOK section. The
// verdict functions below are pure: observations of a sandbox run in, pass | missing | wrong out.
// scripts/lib/contract/check.mts gathers the observations; RUNBOOK "The app contract" mirrors this.

export type Tier = 'required' | 'recommended';
/** unchecked: could not be observed because an earlier required item failed (the app never answered) */
export type ItemStatus = 'pass' | 'missing' | 'wrong' | 'unchecked';

export interface ContractItem {
  id: string;
  tier: Tier;
  title: string;
  /** what the app must do, one sentence */
  requirement: string;
  /** what the operator loses without it */
  without: string;
  /** how the stack and the toolkit behave when it is absent */
  degrades: string;
  /** how to fix it; code where a few lines of Hono/Bun help */
  fix: string;
  /** RUNBOOK.md anchor of the section that explains it */
  runbook: string;
}

export const RUNBOOK_CONTRACT = 'RUNBOOK.md#the-app-contract';

export const CONTRACT_ENV = {
  PORT: '3000',
  DB_PATH: '/app/data/lazyflow.db',
  UPLOADS_DIR: '/app/uploads',
  DATA_DIR: '/app/data',
  /** READY_PATH's default (docker-compose.yml); an app without a readiness path sets READY_PATH=/health */
  READY_PATH: '/ready',
  APP_UID: 1000,
} as const;

/** The readiness path Caddy polls, from the env file's READY_PATH (default /ready). */
export function readyPathOf(values: Record<string, string | undefined> = {}): string {
  return (values.READY_PATH ?? '').trim() || CONTRACT_ENV.READY_PATH;
}

export const ITEMS: ContractItem[] = [
  {
    id: 'port',
    tier: 'required',
    title: 'listens on PORT',
    requirement: 'serve HTTP on 0.0.0.0:$PORT (the stack sets PORT=3000); Caddy reaches the app only there',
    without: 'nothing reaches the app: every request through Caddy waits, then fails with 502',
    degrades: 'no degradation: the rollout refuses the image',
    fix: 'Bun.serve({ hostname: "0.0.0.0", port: Number(process.env.PORT ?? 3000), fetch: app.fetch })',
    runbook: '#the-app-contract',
  },
  {
    id: 'health',
    tier: 'required',
    title: 'GET /health: 200 when usable, 503 when not',
    requirement: 'GET /health answers 200 when the app can serve (database reachable), 503 (or refuses to start) when it cannot',
    without: 'the deploy gates cannot tell a working release from a broken one, so a broken one goes live',
    degrades: 'no degradation: the rollout refuses the image',
    fix: [
      'app.get("/health", (c) => {',
      '  try { db.query("SELECT 1").get(); return c.json({ status: "ok" }); }',
      '  catch { return c.json({ status: "error" }, 503); }',
      '});',
    ].join('\n'),
    runbook: '#the-app-contract',
  },
  {
    id: 'healthcheck',
    tier: 'required',
    title: "Docker's healthcheck probe gets 200 in the image",
    requirement: "GET HEALTHCHECK_PATH answers 200 to the probe Docker runs inside the container every 2 s: bash's /dev/tcp (docker-compose.yml), or Bun for an image without bash (COMPOSE_FILE adds docker/compose.bun-healthcheck.yml). HEALTHCHECK_PATH is the env file's when set; unset, /health/write (the reference app's write probe) if the app answers it with 200, else /health, as the contract gate finds out and records (STATE_DIR/probes.env)",
    without: 'Docker never reports the container healthy: the first deploy never starts the proxy, and every later swap times out and is rolled back',
    degrades: 'no degradation: the rollout refuses the image',
    fix: [
      'leave HEALTHCHECK_PATH unset (the gate then uses /health), or in .env.prod: HEALTHCHECK_PATH=/health   (any path that answers 200 without auth while the app is usable)',
      'an image without bash (alpine, distroless): COMPOSE_FILE=docker-compose.yml:docker/compose.bun-healthcheck.yml',
    ].join('\n'),
    runbook: '#the-app-contract',
  },
  {
    id: 'read-only-root',
    tier: 'required',
    title: 'read-only root filesystem, two writable state directories',
    requirement: 'start and serve with a read-only root filesystem; write only to /app/data (DB_PATH), /app/uploads (UPLOADS_DIR) and the tmpfs /tmp',
    without: 'the container crashes at boot in production (compose runs it read_only: true)',
    degrades: 'no degradation: the rollout refuses the image',
    fix: 'write caches and temporary files under $TMPDIR (/tmp), state under dirname(DB_PATH) or UPLOADS_DIR; set BUN_RUNTIME_TRANSPILER_CACHE_PATH=0 in the Dockerfile',
    runbook: '#the-app-contract',
  },
  {
    id: 'non-root',
    tier: 'required',
    title: 'runs as a non-root user (uid 1000)',
    requirement: 'the image runs as uid 1000 (USER bun in oven/bun images), which owns STATE_DIR/data and STATE_DIR/uploads',
    without: 'a compromised app is root in its container; with all capabilities dropped root cannot even write the uid-1000 state directories',
    degrades: 'no degradation: the rollout refuses the image',
    fix: 'in the Dockerfile, after the build steps: RUN mkdir -p /app/data /app/uploads && chown bun:bun /app/data /app/uploads, then USER bun',
    runbook: '#the-app-contract',
  },
  {
    id: 'database',
    tier: 'required',
    title: 'SQLite at DB_PATH in WAL mode',
    requirement: 'the one database is a SQLite file at $DB_PATH (/app/data/lazyflow.db) in WAL mode',
    without: 'backups copy an empty or absent file, restore restores nothing, and data written elsewhere dies with the container',
    degrades: 'no degradation: the rollout refuses the image',
    fix: [
      'import { Database } from "bun:sqlite";',
      'const db = new Database(process.env.DB_PATH ?? "/app/data/lazyflow.db", { create: true });',
      'db.exec("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;");',
    ].join('\n'),
    runbook: '#the-app-contract',
  },
  {
    id: 'health-version',
    tier: 'recommended',
    title: '/health reports the version',
    requirement: 'the /health JSON carries "version": the APP_VERSION baked in at build time (--build-arg APP_VERSION=$(git rev-parse --short HEAD))',
    without: 'the gate cannot prove that the answering process is the new release rather than a leftover',
    degrades: 'the health gate compares the image of the running container with the release instead, and says so',
    fix: 'Dockerfile: ARG APP_VERSION=dev + ENV APP_VERSION=${APP_VERSION}; in /health: c.json({ status: "ok", version: process.env.APP_VERSION })',
    runbook: '#the-app-contract',
  },
  {
    id: 'readiness',
    tier: 'recommended',
    title: 'readiness path with a lame-duck period after SIGTERM',
    requirement: 'GET READY_PATH answers 200 while serving and 503 from SIGTERM on, for about a second while every other route still answers; then the app stops accepting and drains. READY_PATH is the env file\'s when set; unset, /ready if the app answers it with 200, else /health, as the contract gate finds out and records',
    without: 'nothing tells Caddy that the old container is about to close its listener: the toolkit has to, which makes every swap hold requests longer',
    degrades: "with READY_PATH=/health Caddy polls /health instead, and the toolkit drains the app itself: before it stops the app it makes Caddy's health check fail (STATE_DIR/proxy/draining) and waits 0.75 s, so Caddy holds new requests rather than sending one to a listener about to close; each swap holds requests that much longer (BENCHMARKS.md, \"Without a readiness path\"). An app that ignores SIGTERM is killed after stop_grace_period (15 s) with whatever it was serving",
    fix: [
      'let draining = false;',
      'app.get("/ready", (c) => c.json({ status: draining ? "draining" : "ready" }, draining ? 503 : 200));',
      'process.on("SIGTERM", async () => {',
      '  draining = true; await Bun.sleep(1000);   // lame duck: Caddy polls /ready every 250 ms',
      '  await server.stop(); db.close(); process.exit(0);',
      '});',
    ].join('\n'),
    runbook: '#the-app-contract',
  },
  {
    id: 'user-version',
    tier: 'recommended',
    title: 'schema version in PRAGMA user_version',
    requirement: 'migrations set PRAGMA user_version to the schema version they bring the database to',
    without: 'rollback cannot tell whether a release changed the schema',
    degrades: 'every failed release restores nothing and says so; rollback --with-db is the operator\'s decision',
    fix: 'after applying migration N in a transaction: db.exec(`PRAGMA user_version = ${N}`)',
    runbook: '#the-app-contract',
  },
  {
    id: 'jobs-heartbeat',
    tier: 'recommended',
    title: 'background jobs heartbeat',
    requirement: 'background jobs record their last tick: /health reports "jobs": { "lastTickAt": ISO time }, or rows in table job_heartbeats(last_tick_at)',
    without: 'a stalled job loop (reminders, syncs) goes unnoticed',
    degrades: 'the smoke check "jobs" is skipped with a notice',
    fix: 'setInterval(() => db.run("INSERT INTO job_heartbeats (job, last_tick_at) VALUES (\'main\', ?) ON CONFLICT(job) DO UPDATE SET last_tick_at = excluded.last_tick_at", [new Date().toISOString()]), 5000);',
    runbook: '#the-app-contract',
  },
  {
    id: 'update-dedupe',
    tier: 'recommended',
    title: 'each Telegram update_id processed once',
    requirement: 'the webhook records each update_id it has processed (a table with an update_id column) and skips repeats',
    without: 'Telegram redelivers an update whose answer was lost in a swap, and the bot acts on it twice',
    degrades: 'nothing the toolkit can do: a redelivered update is processed again',
    fix: 'bot.use(async (ctx, next) => { if (db.query("SELECT 1 FROM processed_updates WHERE update_id = ?").get(ctx.update.update_id)) return; await next(); db.run("INSERT INTO processed_updates (update_id) VALUES (?)", [ctx.update.update_id]); });',
    runbook: '#the-app-contract',
  },
];

export const ITEM_IDS = ITEMS.map((i) => i.id);

export function item(id: string): ContractItem {
  const it = ITEMS.find((i) => i.id === id);
  if (!it) throw new Error(`unknown contract item ${id}`);
  return it;
}

// ---------------------------------------------------------------------------------------------
// observations of one sandbox run (gathered by contract/check.mts)

export interface HttpProbe {
  status: number;
  body: string;
  contentType?: string;
  error?: string;
}

export interface BootObs {
  /** the container answered HTTP on PORT */
  answered: boolean;
  /** the container exited before answering */
  exitedEarly?: { exitCode: number; logTail: string };
  /** the log line that shows a write refused by the read-only root filesystem (EROFS), when it exited early */
  readOnlyError?: string;
  /** the log line that shows a failed call to Telegram's Bot API (unreachable from the sandbox), when it exited early */
  telegramError?: string;
}

export interface DbFileObs {
  exists: boolean;
  journalMode?: string;
  userVersion?: number;
  ownerUid?: number;
  /** tables with an update_id column */
  updateIdTables?: string[];
  /** whether a job_heartbeats table has a row */
  heartbeatRows?: number;
  error?: string;
}

export interface ShutdownObs {
  /** /ready answered 503 after SIGTERM before the listener closed */
  readyTurned503: boolean;
  /** ms between the first 503 from /ready and the first refused connection */
  lameDuckMs: number | null;
  /** a request other than /ready was served after /ready turned 503 */
  servedWhileDraining: boolean;
  /** still answering when the probe gave up, seconds after SIGTERM: the app ignores SIGTERM */
  stillServing?: boolean;
}

/** Docker's healthcheck probe, run in the app container as Docker runs it */
export interface HealthcheckObs {
  kind: 'bash' | 'bun';
  path: string;
  exitCode: number;
  /** what the probe (or docker exec) printed */
  output: string;
}

export interface ContractObs {
  /** image Config.User ('' = root) */
  imageUser: string;
  boot: BootObs;
  health?: HttpProbe;
  /** READY_PATH as configured (default /ready); /health means the app has none */
  readyPath?: string;
  /** GET of the readiness path (READY_PATH, or /ready when READY_PATH is /health) */
  ready?: HttpProbe;
  healthcheck?: HealthcheckObs;
  /** the app started with a corrupt file at DB_PATH */
  brokenDb?: { exited: boolean; health?: HttpProbe };
  db?: DbFileObs;
  /** files other than the database that appeared in the data dir (names) */
  shutdown?: ShutdownObs;
}

export interface ItemResult {
  id: string;
  tier: Tier;
  title: string;
  status: ItemStatus;
  detail: string;
  /** the fix, set when status is missing or wrong */
  fix?: string;
  runbook: string;
}

type Verdict = { status: ItemStatus; detail: string; fix?: string };
const pass = (detail: string): Verdict => ({ status: 'pass', detail });
const missing = (detail: string): Verdict => ({ status: 'missing', detail });
const wrong = (detail: string): Verdict => ({ status: 'wrong', detail });
const unchecked = (detail: string): Verdict => ({ status: 'unchecked', detail });

function json(p?: HttpProbe): Record<string, unknown> | null {
  if (!p || p.error) return null;
  try {
    const v = JSON.parse(p.body) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const NOT_ANSWERING = 'not observable: the app never answered on PORT';

/** The sandbox has no route to Telegram (a candidate must never reach the live bot): an app that exits when a Bot API call fails at start-up is told so. */
export const TELEGRAM_FIX = [
  'do not exit when a Bot API call fails at start-up: the toolkit sets the webhook itself after the swap (rollout\'s telegram gate), and Telegram can be briefly unreachable in production too, e.g.',
  'try { await bot.api.setWebhook(url, { secret_token: WEBHOOK_SECRET }); } catch (err) { console.error("setWebhook failed, serving anyway:", err); }',
  '(the contract sandbox gives the app a placeholder BOT_TOKEN and no route to Telegram: the real token must not move the live webhook to a candidate)',
].join('\n');

function telegramExit(b: BootObs): string {
  return `the app exited (code ${b.exitedEarly?.exitCode}) because a call to Telegram's Bot API failed at start-up: ${(b.telegramError ?? '').slice(0, 240)}; the sandbox has no route to Telegram (placeholder BOT_TOKEN), so catch that error at start-up`;
}

/** The log line of a failed Bot API call (grammY's HttpError / GrammyError, telegraf, a plain fetch to the API root), if any. */
export function telegramErrorInLog(logTail: string): string | undefined {
  const re = /Network request for '\w+' failed|Call to '\w+' failed|api\.telegram\.org|127\.0\.0\.1:9\b|TELEGRAM_API_ROOT|\b(getMe|setWebhook|deleteWebhook|getUpdates|setMyCommands)\b.*\b(fail|error|refused|ECONNREFUSED|unreachable)/i;
  const line = logTail.split('\n').find((l) => re.test(l) && !/\b(required|missing|not set)\b/i.test(l));
  return line?.trim();
}

/** The log line of a write refused by the read-only root filesystem, if any. */
export function readOnlyErrorInLog(logTail: string): string | undefined {
  return logTail.split('\n').find((l) => /EROFS|read-only file system/i.test(l))?.trim();
}

function bootFailure(b: BootObs): string {
  if (!b.exitedEarly) return 'nothing answered HTTP on app:PORT within the boot timeout';
  const tail = b.exitedEarly.logTail.trim().split('\n').slice(-3).join(' | ');
  return `the container exited with code ${b.exitedEarly.exitCode} before answering${tail ? `: ${tail.slice(0, 300)}` : ''}`;
}

export function judgePort(o: ContractObs): Verdict {
  if (o.boot.answered) return pass(`answers HTTP on port ${CONTRACT_ENV.PORT}`);
  if (o.boot.exitedEarly && o.boot.telegramError) return { ...wrong(telegramExit(o.boot)), fix: TELEGRAM_FIX };
  if (o.boot.exitedEarly) return unchecked(bootFailure(o.boot));
  return missing(bootFailure(o.boot));
}

export function judgeHealth(o: ContractObs): Verdict {
  if (!o.boot.answered) return unchecked(NOT_ANSWERING);
  const h = o.health;
  if (!h || h.error) return wrong(`GET /health: ${h?.error ?? 'no answer'}`);
  if (h.status === 404) return missing('GET /health -> 404');
  if (h.status !== 200) return wrong(`GET /health -> ${h.status} while the database is fine`);
  if (!o.brokenDb) return pass('GET /health -> 200 (503 case not observed)');
  if (o.brokenDb.exited) return pass('GET /health -> 200; with a corrupt database the app refuses to start');
  const b = o.brokenDb.health;
  if (!b || b.error) return pass('GET /health -> 200; with a corrupt database the app does not answer');
  if (b.status === 200) return wrong('GET /health -> 200 even with a corrupt file at DB_PATH: /health must query the database');
  return pass(`GET /health -> 200; ${b.status} with a corrupt database`);
}

export function judgeHealthcheck(o: ContractObs): Verdict {
  if (!o.boot.answered) return unchecked(NOT_ANSWERING);
  const h = o.healthcheck;
  if (!h) return unchecked('the healthcheck probe was not run');
  const probe = `the ${h.kind} probe of GET ${h.path}`;
  if (h.exitCode === 0) return pass(`${probe} -> 200`);
  const out = h.output.trim().split('\n').slice(-2).join(' | ').slice(0, 240);
  if (/executable file not found|no such file or directory/i.test(h.output)) {
    return wrong(`the image has no ${h.kind}, so Docker cannot run ${probe} (${out})${h.kind === 'bash' ? ': add docker/compose.bun-healthcheck.yml to COMPOSE_FILE' : ''}`);
  }
  if (/\b404\b/.test(h.output)) return missing(`${probe} -> 404: the app has no ${h.path}${h.path !== '/health' ? '; set HEALTHCHECK_PATH=/health' : ''}`);
  return wrong(`${probe} failed (exit ${h.exitCode}): ${out || 'no output'}`);
}

export function judgeReadOnlyRoot(o: ContractObs): Verdict {
  if (o.boot.answered) return pass('starts and serves with --read-only, only /app/data, /app/uploads and /tmp writable');
  if (o.boot.exitedEarly && o.boot.readOnlyError) {
    return wrong(`exits under --read-only: it writes outside /app/data, /app/uploads and /tmp (${o.boot.readOnlyError.slice(0, 300)})`);
  }
  return unchecked(NOT_ANSWERING);
}

const ROOT_USERS = new Set(['', 'root', '0', '0:0', 'root:root']);

export function judgeNonRoot(o: ContractObs): Verdict {
  const user = o.imageUser.trim();
  if (ROOT_USERS.has(user) || user.startsWith('0:') || user.startsWith('root:')) return wrong(`the image runs as root (USER ${user || 'not set'})`);
  const uid = o.db?.exists ? o.db.ownerUid : undefined;
  if (uid === 0) return wrong(`USER ${user}, but the database file is owned by root`);
  if (uid !== undefined && uid !== CONTRACT_ENV.APP_UID) return wrong(`USER ${user} writes as uid ${uid}; the state directories belong to uid ${CONTRACT_ENV.APP_UID}`);
  return pass(`USER ${user}${uid !== undefined ? ` (uid ${uid})` : ''}`);
}

export function judgeDatabase(o: ContractObs): Verdict {
  if (!o.boot.answered) return unchecked(NOT_ANSWERING);
  const d = o.db;
  if (!d || !d.exists) return missing(`no SQLite database at DB_PATH (${CONTRACT_ENV.DB_PATH}) after /health answered: the app keeps its data elsewhere`);
  if (d.error) return wrong(`the file at DB_PATH is not a readable SQLite database: ${d.error}`);
  if ((d.journalMode ?? '').toLowerCase() !== 'wal') return wrong(`journal_mode is ${d.journalMode ?? '?'}, not wal`);
  return pass(`${CONTRACT_ENV.DB_PATH}, journal_mode wal`);
}

export function judgeHealthVersion(o: ContractObs): Verdict {
  if (!o.boot.answered) return unchecked(NOT_ANSWERING);
  const j = json(o.health);
  if (o.health?.status !== 200) return unchecked('/health does not answer 200');
  const v = j?.version;
  if (v === undefined) return missing('/health has no "version"');
  if (typeof v !== 'string' || v.trim() === '') return wrong(`/health "version" is ${JSON.stringify(v)}, expected a non-empty string`);
  return pass(`/health reports version ${v}`);
}

/** the path the checker probes for readiness: READY_PATH, or the default /ready when READY_PATH is /health */
export function readinessProbePath(readyPath: string): string {
  return readyPath === '/health' ? CONTRACT_ENV.READY_PATH : readyPath;
}

export function judgeReadiness(o: ContractObs): Verdict {
  if (!o.boot.answered) return unchecked(NOT_ANSWERING);
  const configured = o.readyPath ?? CONTRACT_ENV.READY_PATH;
  const path = readinessProbePath(configured);
  const r = o.ready;
  const ignoresTerm = o.shutdown?.stillServing
    ? '; it also ignored SIGTERM (still serving seconds later: a Bun process as PID 1 needs a SIGTERM handler, else compose kills it after stop_grace_period)'
    : '';
  if (configured === '/health') {
    if (r && !r.error && r.status === 200) return wrong(`READY_PATH=/health, but the app answers GET ${path} with 200: set READY_PATH=${path} so Caddy uses it`);
    return missing(`READY_PATH=/health: Caddy polls /health, the app has no readiness path (GET ${path} -> ${r?.error ?? r?.status ?? 'no answer'})${ignoresTerm}`);
  }
  if (!r || r.error || r.status === 404) return missing(`GET ${path} -> ${r?.error ?? r?.status ?? 'no answer'}${ignoresTerm}`);
  if (r.status !== 200) return wrong(`GET ${path} -> ${r.status} while serving`);
  const s = o.shutdown;
  if (!s) return pass(`GET ${path} -> 200 (SIGTERM not observed)`);
  if (!s.readyTurned503) return wrong(`${path} kept answering 200 after SIGTERM${s.stillServing ? ignoresTerm : ' until the listener closed: no lame-duck period'}`);
  if (!s.servedWhileDraining) return wrong(`${path} turned 503 after SIGTERM, but other routes stopped at the same time: no lame-duck period`);
  return pass(`GET ${path} -> 200; 503 after SIGTERM while still serving${s.lameDuckMs !== null ? ` for ${s.lameDuckMs} ms` : ''}`);
}

export function judgeUserVersion(o: ContractObs): Verdict {
  const d = o.db;
  if (!o.boot.answered || !d?.exists || d.error) return unchecked('no database at DB_PATH to read');
  if (!d.userVersion) return missing('PRAGMA user_version is 0');
  return pass(`PRAGMA user_version = ${d.userVersion}`);
}

export function judgeJobsHeartbeat(o: ContractObs): Verdict {
  if (!o.boot.answered) return unchecked(NOT_ANSWERING);
  const jobs = json(o.health)?.jobs as { lastTickAt?: unknown } | undefined;
  if (jobs && typeof jobs === 'object' && 'lastTickAt' in jobs) {
    if (typeof jobs.lastTickAt === 'string' && Number.isFinite(Date.parse(jobs.lastTickAt))) return pass(`/health jobs.lastTickAt ${jobs.lastTickAt}`);
    return wrong(`/health jobs.lastTickAt is ${JSON.stringify(jobs.lastTickAt)}, expected an ISO time once the jobs run`);
  }
  if ((o.db?.heartbeatRows ?? 0) > 0) return pass('job_heartbeats has a row');
  return missing('neither /health jobs.lastTickAt nor a job_heartbeats row');
}

export function judgeUpdateDedupe(o: ContractObs): Verdict {
  const d = o.db;
  if (!o.boot.answered || !d?.exists || d.error) return unchecked('no database at DB_PATH to read');
  const t = d.updateIdTables ?? [];
  if (!t.length) return missing('no table with an update_id column');
  return pass(`update_id recorded in ${t.join(', ')}`);
}

const JUDGES: Record<string, (o: ContractObs) => Verdict> = {
  port: judgePort,
  health: judgeHealth,
  healthcheck: judgeHealthcheck,
  'read-only-root': judgeReadOnlyRoot,
  'non-root': judgeNonRoot,
  database: judgeDatabase,
  'health-version': judgeHealthVersion,
  readiness: judgeReadiness,
  'user-version': judgeUserVersion,
  'jobs-heartbeat': judgeJobsHeartbeat,
  'update-dedupe': judgeUpdateDedupe,
};

/** Every item judged; tier filters ('required' for the rollout gate). */
export function judgeContract(o: ContractObs, tier?: Tier): ItemResult[] {
  return ITEMS.filter((i) => !tier || i.tier === tier).map((i) => {
    const { fix, ...v } = JUDGES[i.id](o);
    return {
      id: i.id,
      tier: i.tier,
      title: i.title,
      ...v,
      ...(v.status === 'missing' || v.status === 'wrong' ? { fix: fix ?? i.fix } : {}),
      runbook: `RUNBOOK.md${i.runbook}`,
    };
  });
}

/** 0 when every required item passes, 1 otherwise (recommended items never fail the check). */
export function contractExitCode(results: ItemResult[]): 0 | 1 {
  return results.some((r) => r.tier === 'required' && r.status !== 'pass') ? 1 : 0;
}

/** One line per failed required item, for a gate's error message. */
export function failedRequired(results: ItemResult[]): ItemResult[] {
  return results.filter((r) => r.tier === 'required' && r.status !== 'pass');
}

/** The warning a gate or smoke prints for a recommended item the app lacks. */
export function recommendedNotice(r: Pick<ItemResult, 'id' | 'status' | 'detail' | 'runbook'>): string {
  const it = item(r.id);
  return `${r.id} (recommended) ${r.status}: ${r.detail}; ${it.degrades} (${r.runbook})`;
}

/** The recommended items the app lacks (missing or wrong), as notices; nothing for items that pass or could not be observed. */
export function recommendedNotices(results: ItemResult[]): string[] {
  return results.filter((r) => r.tier === 'recommended' && (r.status === 'missing' || r.status === 'wrong')).map(recommendedNotice);
}

/**
 * Env keys an app that exited at start-up names as missing in its last log lines ("MINI_APP_URL is
 * required"), and that the sandbox did not set: what preflight then names. Heuristic on purpose: a
 * line must say required / missing / not set, and error codes (SQLITE_*, ERR_*) are not keys.
 */
export function missingKeysInLog(logTail: string, present: readonly string[]): string[] {
  const found = new Set<string>();
  for (const line of logTail.split('\n')) {
    if (!/\b(required|missing|not set|unset|must be set|is empty|undefined)\b/i.test(line)) continue;
    for (const m of line.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)) {
      const k = m[0];
      if (/^(SQLITE|ERR)_/.test(k)) continue;
      if (!present.includes(k)) found.add(k);
    }
  }
  return [...found];
}

// ---------------------------------------------------------------------------------------------
// RUNBOOK.md's contract tables are this text; test/unit/contract-items.test.ts keeps them equal.

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function contractMarkdown(): string {
  const out: string[] = [];
  for (const tier of ['required', 'recommended'] as const) {
    out.push(tier === 'required'
      ? '**Required** (the rollout refuses an image that fails one):'
      : '**Recommended** (nothing fails without them; each absence is a warning naming the item and this section):');
    out.push('', '| item | what the app does | without it | the toolkit then |', '| --- | --- | --- | --- |');
    for (const i of ITEMS.filter((x) => x.tier === tier)) out.push(`| \`${i.id}\` | ${cell(i.requirement)} | ${cell(i.without)} | ${cell(i.degrades)} |`);
    out.push('');
  }
  out.push('Fixes, as the checker prints them:', '');
  for (const i of ITEMS) out.push(`- \`${i.id}\`:`, '', '  ```ts', ...i.fix.split('\n').map((l) => `  ${l}`), '  ```', '');
  return out.join('\n').trimEnd() + '\n';
}
