// bench/backup: online backup of a 1 GiB SQLite database while a writer commits at a steady rate.
//
//   node bench/backup/run.mts [--mib 1024] [--rate 200] [--reps 5] [--restore] [--out file]
//
// Measures, in one run: cp of the same file (reference throughput), each snapshot method of
// scripts/lib/sqlite-snapshot.mts, the full scripts/lib/backup.mts run (snapshot + integrity check
// + manifest), and the sqlite3 CLI's .backup as the baseline; the writer's commit latency p50/p99
// before and during each, and its SQLITE_BUSY count. With --restore (needs Docker and the stack
// images) it also times restore start -> healthy app for the same database.
import { fork, spawnSync } from 'node:child_process';
import { cpus, totalmem, hostname, release, loadavg } from 'node:os';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import { makeDb } from './make-db.mts';
import { snapshotDatabase, verifyDatabase, type SnapshotMethod } from '../../scripts/lib/backup/sqlite-snapshot.mts';
import { renderTable } from '../../scripts/lib/cli/log.mts';

const here = dirname(fileURLToPath(import.meta.url));
const argv = minimist(process.argv.slice(2), { string: ['dir', 'out', 'methods'], boolean: ['restore', 'help'], default: { mib: 1024, rate: 200, reps: 5, 'cli-timeout': 60 } });
if (argv.help) {
  console.log('node bench/backup/run.mts [--mib 1024] [--rate 200] [--reps 5] [--cli-timeout 60] [--dir /var/tmp/lazyflow-bench] [--methods file-copy,file-copy-paced,read-txn,single-step,vacuum-into,cli,backup] [--restore] [--out file.md]');
  process.exit(0);
}
const MIB = Number(argv.mib);
const REPS = Number(argv.reps);
const CLI_TIMEOUT_S = Number(argv['cli-timeout']);
const RATE = Number(argv.rate);
const dir = resolve(argv.dir ?? '/var/tmp/lazyflow-bench');
const methods = String(argv.methods ?? 'file-copy,file-copy-paced,read-txn,single-step,vacuum-into,cli,backup').split(',');
mkdirSync(dir, { recursive: true });
const src = join(dir, `bench-${MIB}m.db`);
const log = (m: string) => console.error(`[bench] ${m}`);

log(`database ${src} (${MIB} MiB)`);
const made = makeDb(src, MIB * 2 ** 20, log);
log(`${made.reused ? 'reused' : 'built'}: ${(made.bytes / 2 ** 20).toFixed(0)} MiB`);
// start clean: no leftover WAL from an earlier run
{
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(src);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}
const fileBytes = statSync(src).size;

function timeIt(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}
const rm = (p: string) => rmSync(p, { force: true, recursive: true });
// flush dirty pages first, so a run does not pay for the previous one's writeback
const sync = () => spawnSync('sync');
const walSize = () => (existsSync(`${src}-wal`) ? statSync(`${src}-wal`).size : 0);

// reference: the durable copy of the idle file (a backup is fsynced before it is published);
// plain cp is measured below like the methods, with the writer running
const cpDest = join(dir, 'cp.db');
sync();
const cpSyncMs = timeIt(() => {
  const r = spawnSync('dd', [`if=${src}`, `of=${cpDest}`, 'bs=4M', 'conv=fsync', 'status=none']);
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`);
});
rm(cpDest);
log(`cp + fsync (dd conv=fsync), idle: ${(cpSyncMs / 1000).toFixed(2)} s`);

// the writer
const writer = fork(join(here, 'writer.mts'), [src, String(RATE)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const replies: ((m: any) => void)[] = [];
writer.on('message', (m) => replies.shift()?.(m));
const ask = (msg: object) => new Promise<any>((r) => { replies.push(r); writer.send(msg); });
await new Promise<void>((r) => replies.push(() => r()));
const phase = (p: string) => ask({ cmd: 'phase', phase: p });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await phase('warmup');
await sleep(2000);
await phase('before');
await sleep(10_000);

type Row = { method: string; seconds: string; 'MiB/s': string; 'vs cp': string; result: string; wal: string };
const results: Record<string, { ms: number; ok: boolean; note: string; walAfter: number }> = {};

async function measure(name: string, fn: () => Promise<string>, reps = REPS, cleanup: () => void = () => {}) {
  let total = 0;
  let ok = true;
  let note = '';
  for (let rep = 0; rep < reps && ok; rep++) {
    sync();
    await sleep(1000);
    await phase(name); // the writer pools the latencies of every repetition under this label
    const t0 = performance.now();
    try {
      note = await fn();
    } catch (err) {
      ok = false;
      note = (err as Error).message.split('\n')[0];
    }
    total += performance.now() - t0;
    await phase('between');
    cleanup(); // deleting a 1 GiB file is not part of any copy's time
    await sleep(2000);
  }
  const runs = ok ? reps : 1;
  results[name] = { ms: total / runs, ok, note: `${note}${runs > 1 ? ` (mean of ${runs})` : ''}`, walAfter: walSize() };
  log(`${name}: ${(total / runs / 1000).toFixed(2)} s ${ok ? 'ok' : 'FAILED'} ${note}`);
}

// cp of the same file, under the same conditions as the methods (writer running, page cache warm)
rm(cpDest);
await measure('cp', async () => {
  const r = spawnSync('cp', [src, cpDest]);
  if (r.status !== 0) throw new Error(`cp failed: ${r.stderr}`);
  return 'reference (not a consistent copy)';
}, REPS, () => rm(cpDest));
const cpMs = results.cp.ms;

for (const m of methods) {
  const dest = join(dir, `snap-${m}.db`);
  rm(dest);
  if (m === 'cli') {
    // sqlite3 CLI .backup: 100 pages per step, restarts when the writer commits in between
    await measure('sqlite3 .backup', async () => {
      const r = spawnSync('sqlite3', [src, '.timeout 5000', `.backup '${dest}'`], { timeout: CLI_TIMEOUT_S * 1000, encoding: 'utf8' });
      if (r.error || r.status !== 0) throw new Error(r.error ? `did not finish within ${CLI_TIMEOUT_S} s: it restarts whenever the writer commits` : `exit ${r.status}: ${r.stderr.trim()}`);
      const v = verifyDatabase(dest, { quick: true });
      return v.ok ? 'quick_check ok' : `quick_check: ${v.messages[0]}`;
    }, 1);
  } else if (m === 'backup') {
    // the whole toolkit backup (snapshot + integrity_check + manifest) into a scratch STATE_DIR
    const stateDir = join(dir, 'state');
    rm(stateDir);
    mkdirSync(join(stateDir, 'data'), { recursive: true });
    const { runBackup } = await import('../../scripts/lib/backup/backup.mts');
    const { stateLayout } = await import('../../scripts/lib/config/state.mts');
    const { createLogger } = await import('../../scripts/lib/cli/log.mts');
    const layout = stateLayout(stateDir);
    await measure('backup.mts (with integrity_check)', async () => {
      const r = await runBackup({ layout, dbPath: src, reason: 'manual', log: createLogger({ quiet: true }), skipAppInfo: true });
      return `${r.id}: ${r.manifest.database.integrity}`;
    }, REPS, () => rm(layout.backups));
    rm(stateDir);
  } else {
    const paced = m === 'file-copy-paced';
    const method = (m === 'file-copy-paced' ? 'file-copy' : m) as SnapshotMethod;
    await measure(m, async () => {
      const r = await snapshotDatabase(src, dest, { method, paced });
      return `${r.pageCount} pages`;
    }, REPS, () => rm(dest));
  }
  rm(dest);
  rm(`${dest}-journal`);
}

// integrity_check of a 1 GiB copy (part of every backup), timed on its own
{
  const dest = join(dir, 'snap-verify.db');
  rm(dest);
  await snapshotDatabase(src, dest, { method: 'file-copy' });
  const t = timeIt(() => {
    const v = verifyDatabase(dest);
    if (!v.ok) throw new Error(`integrity_check: ${v.messages[0]}`);
  });
  results['integrity_check (of a copy)'] = { ms: t, ok: true, note: 'ok', walAfter: walSize() };
  log(`integrity_check of the copy: ${(t / 1000).toFixed(2)} s`);
  rm(dest);
}

const { stats } = await ask({ cmd: 'stop' });
const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const rows = Object.entries(results).map(([name, r]) => {
  const s = stats[name] ?? {};
  const mibs = fileBytes / 2 ** 20 / (r.ms / 1000);
  return {
    method: name,
    s: (r.ms / 1000).toFixed(2),
    'MiB/s': r.ok ? mibs.toFixed(0) : '-',
    'vs cp': r.ok && !name.startsWith('integrity') && name !== 'cp' ? `${((cpMs / r.ms) * 100).toFixed(0)}%` : '-',
    'p50 ms': fmt(s.p50),
    'p99 ms': fmt(s.p99),
    'max ms': fmt(s.max),
    commits: s.commits ?? '-',
    BUSY: s.busy ?? '-',
    'WAL after': `${(r.walAfter / 2 ** 20).toFixed(1)} MiB`,
    result: r.ok ? r.note : `FAILED: ${r.note}`,
  };
});
const before = stats.before;
const header = [
  `machine: ${hostname()} | ${cpus().length} x ${cpus()[0]?.model ?? '?'} | ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM | Linux ${release()} | node ${process.version}`,
  `database: ${(fileBytes / 2 ** 20).toFixed(0)} MiB, writer ${RATE} commits/s (WAL, synchronous=NORMAL, busy_timeout 5000)`,
  `cp of the same file (writer running, page cache warm, no fsync): ${(cpMs / 1000).toFixed(2)} s = ${(fileBytes / 2 ** 20 / (cpMs / 1000)).toFixed(0)} MiB/s; durable copy of the idle file (dd conv=fsync): ${(cpSyncMs / 1000).toFixed(2)} s`,
  `load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (the machine is shared)`,
  `writer before any backup: p50 ${fmt(before.p50)} ms, p99 ${fmt(before.p99)} ms, max ${fmt(before.max)} ms, BUSY ${before.busy} (${before.commits} commits)`,
];
const cols = ['method', { key: 's', label: 'seconds', align: 'right' as const }, { key: 'MiB/s', align: 'right' as const }, { key: 'vs cp', align: 'right' as const }, { key: 'p50 ms', align: 'right' as const }, { key: 'p99 ms', align: 'right' as const }, { key: 'max ms', align: 'right' as const }, { key: 'BUSY', align: 'right' as const }, 'WAL after', 'result'];
const table = renderTable(rows, cols);
let out = header.join('\n') + '\n\n' + table;
console.log(out);

const backupRow = results['backup.mts (with integrity_check)'];
const chosen = results['file-copy'];
const verdict = [
  '',
  `targets: snapshot (${chosen ? 'file-copy' : '?'}) >= 50% of cp: ${chosen ? `${((cpMs / chosen.ms) * 100).toFixed(0)}% ${cpMs / chosen.ms >= 0.5 ? 'MET' : 'MISSED'}` : '-'}` +
    `; whole backup.mts incl. integrity_check: ${backupRow ? `${((cpMs / backupRow.ms) * 100).toFixed(0)}%` : '-'}` +
    `; SQLITE_BUSY ${Object.values(stats).reduce((n: number, s: any) => n + (s.busy ?? 0), 0)}` +
    `; writer p99 during file-copy ${fmt(stats['file-copy']?.p99)} ms vs before ${fmt(before.p99)} ms (${stats['file-copy'] ? ((stats['file-copy'].p99 / before.p99)).toFixed(2) : '-'}x, target <= 2x)`,
].join('\n');
console.log(verdict);
out += verdict + '\n';

if (argv.restore) {
  const { benchRestore } = await import('./restore-bench.mts');
  const r = await benchRestore(src, log);
  const line = `restore start -> healthy app (${(fileBytes / 2 ** 20).toFixed(0)} MiB database): ${(r.ms / 1000).toFixed(1)} s (${r.detail})`;
  console.log(line);
  out += '\n' + line + '\n';
}
if (argv.out) writeFileSync(argv.out, out);
process.exit(0);
