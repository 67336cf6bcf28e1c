// The contract checker's docker commands as data: a private network, the candidate app container
// under the production restrictions, and a probe container on the same network. The probe runs
// from the Bun base image (the one every app image is built from), so it works whatever the
// candidate image carries: no `docker exec`, no published port.

export const CHECK_LABEL = 'lazyflow.contract-check';

export interface SandboxNames {
  network: string;
  app: string;
  probe: string;
  /** a polling bot's Bot API stub (telegramStubRunArgs) */
  telegram: string;
}

export function sandboxNames(id: string): SandboxNames {
  return { network: `lzf-check-${id}`, app: `lzf-check-${id}-app`, probe: `lzf-check-${id}-probe`, telegram: `lzf-check-${id}-telegram` };
}

export function imageInspectArgs(ref: string): string[] {
  return ['image', 'inspect', '--format', '{{json .Config}}', ref];
}

/** internal: the sandbox reaches nothing outside (no Telegram, no registry) */
export function networkCreateArgs(name: string): string[] {
  return ['network', 'create', '--internal', '--label', `${CHECK_LABEL}=1`, name];
}

export function networkRmArgs(name: string): string[] {
  return ['network', 'rm', name];
}

export interface AppRunSpec {
  name: string;
  network: string;
  image: string;
  /** host directories bind-mounted at /app/data and /app/uploads */
  dataDir: string;
  uploadsDir: string;
  /** env file with the app's values (placeholder secrets only; values stay out of argv) */
  envFile: string;
}

/** The app's uid:gid (owner of STATE_DIR/data and /uploads): the sandbox never runs the image as anything else. */
export const SANDBOX_USER = '1000:1000';

/** The app container as compose runs it in production, minus published ports and restart policy; always
 * read-only and as uid 1000, whatever USER the image names (the non-root item judges that from the image). */
export function appRunArgs(s: AppRunSpec): string[] {
  return [
    'run', '-d',
    '--name', s.name,
    '--label', `${CHECK_LABEL}=1`,
    '--network', s.network,
    '--network-alias', 'app',
    '--read-only',
    '--user', SANDBOX_USER,
    // no route out (internal network); an app that ignores TELEGRAM_API_ROOT is refused at once
    // instead of waiting ~10 s for a DNS answer that never comes
    '--add-host', 'api.telegram.org:127.0.0.1',
    '--tmpfs', '/tmp:size=64m,mode=1777',
    '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges',
    '--memory', '512m',
    '--pids-limit', '256',
    '--mount', `type=bind,source=${s.dataDir},target=/app/data`,
    '--mount', `type=bind,source=${s.uploadsDir},target=/app/uploads`,
    '--env-file', s.envFile,
    s.image,
  ];
}

export interface ProbeRunSpec {
  name: string;
  network: string;
  probeImage: string;
  mode: 'boot' | 'drain' | 'db';
  /** the app container's name: each run has its own, so a lingering container never answers for another */
  appHost: string;
  port: string;
  /** the readiness path to probe (READY_PATH, default /ready) */
  readyPath?: string;
  deadlineMs: number;
  /** boot: also GET these paths (the probes the stack may use: /ready, /health/write) */
  extraPaths?: string[];
  /** the sandbox's data directory: the probe reads the database there, as the app's uid (never root) */
  dataDir?: string;
  /** boot: wait this long after the HTTP probes before reading the database (a heartbeat's first tick) */
  dbWaitMs?: number;
}

/** A one-shot probe: `bun -e` with the script below; prints one JSON line (drain: "polling" first). No
 * --rm: the docker CLI would wait for the removal; the checker removes every container of a run at once.
 * It runs as nobody, or as the app's uid when it reads the app's database (mounted, never followed by root). */
export function probeRunArgs(s: ProbeRunSpec): string[] {
  return [
    'run',
    '--name', s.name,
    '--label', `${CHECK_LABEL}=1`,
    '--network', s.mode === 'db' ? 'none' : s.network,
    '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
    '--user', s.dataDir ? SANDBOX_USER : '65534:65534',
    ...(s.dataDir ? ['--mount', `type=bind,source=${s.dataDir},target=/app/data`, '-e', 'PROBE_DB=/app/data/lazyflow.db', '-e', `PROBE_DB_WAIT_MS=${s.dbWaitMs ?? 0}`] : []),
    ...(s.extraPaths?.length ? ['-e', `PROBE_EXTRA=${s.extraPaths.join(',')}`] : []),
    '-e', 'BUN_RUNTIME_TRANSPILER_CACHE_PATH=0',
    '-e', `PROBE_MODE=${s.mode}`,
    '-e', `PROBE_BASE=http://${s.appHost}:${s.port}`,
    '-e', `PROBE_DEADLINE_MS=${s.deadlineMs}`,
    '-e', `PROBE_READY=${s.readyPath ?? '/ready'}`,
    '--entrypoint', 'bun',
    s.probeImage,
    '-e', PROBE_SCRIPT,
  ];
}

export function containerInspectArgs(name: string): string[] {
  return ['container', 'inspect', '--format', '{{json .State}}', name];
}

export function logsTailArgs(name: string, tail = 20): string[] {
  return ['logs', '--tail', String(tail), name];
}

export function signalArgs(name: string, signal = 'TERM'): string[] {
  return ['kill', '--signal', signal, name];
}

export function removeArgs(names: string[]): string[] {
  return ['rm', '-f', '-v', ...names];
}

/**
 * Runs inside the probe container. boot: wait until the app answers HTTP, then GET /health and
 * the readiness path (PROBE_READY). drain: print "polling", then poll the readiness path and /health
 * every 50 ms until the listener has been closed for 300 ms, and report how the readiness path and
 * the other route behaved in between.
 */
export const PROBE_SCRIPT = String.raw`
const base = process.env.PROBE_BASE, mode = process.env.PROBE_MODE, readyPath = process.env.PROBE_READY || '/ready';
const deadline = Date.now() + Number(process.env.PROBE_DEADLINE_MS || 15000);
async function get(path, ms = 2000) {
  try {
    const r = await fetch(base + path, { signal: AbortSignal.timeout(ms) });
    const body = (await r.text()).slice(0, 4000);
    return { status: r.status, body, contentType: r.headers.get('content-type') || undefined };
  } catch (e) { return { status: 0, body: '', error: String((e && (e.code || e.message)) || e) }; }
}
async function readDb(file) {
  const fs = await import('node:fs');
  let st;
  try { st = fs.lstatSync(file); } catch { return { exists: false }; }
  if (!st.isFile()) return { exists: true, ownerUid: st.uid, error: 'not a regular file' };
  try {
    const { Database } = await import('bun:sqlite');
    const db = new Database(file, { readonly: true });
    try {
      const tables = db.query("SELECT DISTINCT m.name AS name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND p.name = 'update_id'").all();
      let heartbeatRows = 0;
      try { heartbeatRows = db.query('SELECT count(*) AS n FROM job_heartbeats').get().n; } catch {}
      return { exists: true, journalMode: String(db.query('PRAGMA journal_mode').get().journal_mode), userVersion: Number(db.query('PRAGMA user_version').get().user_version), ownerUid: st.uid, updateIdTables: tables.map((t) => t.name), heartbeatRows };
    } finally { db.close(); }
  } catch (e) { return { exists: true, ownerUid: st.uid, error: String((e && e.message) || e) }; }
}
if (mode === 'db') {
  console.log(JSON.stringify({ db: await readDb(process.env.PROBE_DB) }));
} else if (mode === 'boot') {
  let answered = false;
  while (Date.now() < deadline) {
    const r = await get('/health', 1000);
    if (!r.error) { answered = true; break; }
    await Bun.sleep(100);
  }
  const out = { answered };
  if (answered) {
    const extra = (process.env.PROBE_EXTRA || '').split(',').filter(Boolean);
    const [health, ready, ...more] = await Promise.all([get('/health'), get(readyPath), ...extra.map((p) => get(p))]);
    Object.assign(out, { health, ready, paths: Object.fromEntries(extra.map((p, i) => [p, more[i].status])) });
    if (process.env.PROBE_DB) {
      await Bun.sleep(Number(process.env.PROBE_DB_WAIT_MS || 0));
      out.db = await readDb(process.env.PROBE_DB);
    }
  }
  console.log(JSON.stringify(out));
} else {
  console.log('polling');
  let first503 = null, firstRefused = null, servedWhileDraining = false, seen = false;
  while (Date.now() < deadline) {
    const t = Date.now();
    const [ready, health] = await Promise.all([get(readyPath, 1000), get('/health', 1000)]);
    if (!ready.error) seen = true;
    if (ready.status === 503 && first503 === null) first503 = t;
    if (first503 !== null && t > first503 && health.status > 0) servedWhileDraining = true;
    if (ready.error && health.error && seen) {
      if (firstRefused === null) firstRefused = t;
      if (Date.now() - firstRefused > 300) break;
    } else firstRefused = null;
    await Bun.sleep(50);
  }
  console.log(JSON.stringify({ readyTurned503: first503 !== null, lameDuckMs: first503 !== null && firstRefused !== null ? firstRefused - first503 : null, servedWhileDraining, stillServing: firstRefused === null }));
}
`;

/** containers left by an interrupted check (Ctrl-C, a dropped SSH session): name and creation time */
export function leftoverContainersArgs(): string[] {
  return ['ps', '-a', '--filter', `label=${CHECK_LABEL}=1`, '--format', '{{.Names}}\t{{.CreatedAt}}'];
}

export function leftoverNetworksArgs(): string[] {
  return ['network', 'ls', '--filter', `label=${CHECK_LABEL}=1`, '--format', '{{.Name}}\t{{.CreatedAt}}'];
}

/** The sandbox's Bot API stub (a polling bot's, contract/telegram-stub.mts): its network alias and port. */
export const TELEGRAM_STUB_ALIAS = 'telegram-stub';
export const TELEGRAM_STUB_PORT = 8081;

/**
 * The stub Bot API a polling bot's sandbox gets (bot shape polling): a probe-image container on the
 * sandbox's internal network, reachable as TELEGRAM_STUB_ALIAS, answering the calls a poller makes at
 * start-up. Hardened like the probes; it runs as nobody and sees nothing but the network. Any image
 * with `bun` on PATH runs it (the contract check's probe image; the restore drill's app image).
 */
export function telegramStubRunArgs(s: { name: string; network: string; probeImage: string; labels?: string[] }): string[] {
  return [
    'run', '-d',
    '--name', s.name,
    // the contract check's label by default; the restore drill passes its own (project, pid)
    ...(s.labels ?? ['--label', `${CHECK_LABEL}=1`]),
    '--network', s.network,
    '--network-alias', TELEGRAM_STUB_ALIAS,
    '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
    '--user', '65534:65534',
    '--memory', '128m', '--pids-limit', '64',
    '-e', 'BUN_RUNTIME_TRANSPILER_CACHE_PATH=0',
    '-e', `STUB_PORT=${TELEGRAM_STUB_PORT}`,
    '--entrypoint', 'bun',
    s.probeImage,
    '-e', TELEGRAM_STUB_SCRIPT,
  ];
}

/**
 * Runs inside the stub container: the Bot API as a poller sees it with nothing to deliver. getMe
 * answers a bot, deleteWebhook / setMyCommands and other calls true, getWebhookInfo no webhook, and
 * getUpdates an empty list after holding the long poll for at most 2 s (its `timeout` honoured briefly:
 * an idle poller neither spins nor waits long when the check stops it). Any token is accepted: the
 * sandbox's is a placeholder. Prints "listening" once it accepts connections.
 */
export const TELEGRAM_STUB_SCRIPT = String.raw`
const ok = (result) => Response.json({ ok: true, result });
const me = { id: 1000000001, is_bot: true, first_name: 'lazyflow sandbox', username: 'lazyflow_sandbox_bot', can_join_groups: false, can_read_all_group_messages: false, supports_inline_queries: false };
Bun.serve({
  hostname: '0.0.0.0',
  port: Number(process.env.STUB_PORT || 8081),
  async fetch(req) {
    const url = new URL(req.url);
    const m = /^\/bot[^/]+\/([A-Za-z]+)$/.exec(url.pathname);
    if (!m) return Response.json({ ok: false, error_code: 404, description: 'Not Found' }, { status: 404 });
    const params = Object.fromEntries(url.searchParams);
    try {
      const text = await req.text();
      const type = req.headers.get('content-type') || '';
      if (text && type.includes('json')) Object.assign(params, JSON.parse(text));
      else if (text && type.includes('urlencoded')) Object.assign(params, Object.fromEntries(new URLSearchParams(text)));
    } catch {}
    switch (m[1].toLowerCase()) {
      case 'getme': return ok(me);
      case 'getupdates': {
        const s = Math.min(Math.max(Number(params.timeout) || 0, 0), 2);
        if (s > 0) await Bun.sleep(s * 1000);
        return ok([]);
      }
      case 'getwebhookinfo': return ok({ url: '', has_custom_certificate: false, pending_update_count: 0 });
      default: return ok(true);
    }
  },
});
console.log('listening');
`;
