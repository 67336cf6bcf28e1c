// Benchmark writer: commits to a SQLite database at a steady rate, like the app does (WAL,
// synchronous=NORMAL, busy_timeout 5000), and records each commit's latency under the phase label
// the parent sends over IPC. On "stop" it replies with per-phase stats and exits.
import Database from 'better-sqlite3';

const [dbPath, rateArg] = process.argv.slice(2);
const rate = Number(rateArg ?? 100);
const db = new Database(dbPath, { timeout: 5000 });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
const insert = db.prepare(`INSERT INTO tasks (user_id, title, done, created_at, updated_at) VALUES (?, ?, 0, ?, ?)`);
const beat = db.prepare(
  `INSERT INTO job_heartbeats (job, last_tick_at, ticks) VALUES ('bench', ?, 1) ON CONFLICT(job) DO UPDATE SET last_tick_at = excluded.last_tick_at, ticks = ticks + 1`,
);
const commit = db.transaction((i: number) => {
  const ts = new Date().toISOString();
  insert.run(1 + (i % 1000), `bench task ${i} ${'x'.repeat(80)}`, ts, ts);
  beat.run(ts);
});

let phase = 'idle';
const lat: Record<string, number[]> = {};
const busy: Record<string, number> = {};
const errors: Record<string, number> = {};
let i = 0;
let lastCommitted = 0;
const interval = 1000 / rate;
let next = performance.now();
let running = true;

function tick() {
  if (!running) return;
  const t0 = performance.now();
  try {
    commit(++i);
    lastCommitted = i;
    (lat[phase] ??= []).push(performance.now() - t0);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    if (code.startsWith('SQLITE_BUSY')) busy[phase] = (busy[phase] ?? 0) + 1;
    else errors[phase] = (errors[phase] ?? 0) + 1;
  }
  next += interval;
  setTimeout(tick, Math.max(0, next - performance.now()));
}

function pct(a: number[], p: number) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

process.on('message', (m: { cmd: string; phase?: string }) => {
  if (m.cmd === 'phase') {
    phase = m.phase ?? 'idle';
    process.send?.({ ok: true, phase, lastCommitted });
  } else if (m.cmd === 'stop') {
    running = false;
    const stats: Record<string, unknown> = {};
    for (const k of new Set([...Object.keys(lat), ...Object.keys(busy), ...Object.keys(errors)])) {
      const a = lat[k] ?? [];
      stats[k] = { commits: a.length, p50: pct(a, 50), p99: pct(a, 99), max: a.length ? Math.max(...a) : NaN, busy: busy[k] ?? 0, errors: errors[k] ?? 0 };
    }
    process.send?.({ stats, lastCommitted }, () => {
      db.close();
      process.exit(0);
    });
  }
});
process.send?.({ ready: true });
tick();
