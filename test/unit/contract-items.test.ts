import { describe, it, expect } from 'vitest';
import {
  ITEMS, contractExitCode, judgeContract, recommendedNotices, type ContractObs, type ItemStatus,
} from '../../scripts/lib/contract/items.mts';

const ok = (body: unknown, status = 200) => ({ status, body: JSON.stringify(body) });
/** the reference app as the checker sees it: every item passes */
const full: ContractObs = {
  imageUser: 'bun',
  boot: { answered: true },
  health: ok({ status: 'ok', version: 'abc123', jobs: { lastTickAt: '2026-12-01T00:00:00.000Z' } }),
  ready: ok({ status: 'ready' }),
  healthcheck: { kind: 'bash', path: '/health/write', exitCode: 0, output: '' },
  brokenDb: { exited: true },
  db: { exists: true, journalMode: 'wal', userVersion: 3, ownerUid: 1000, updateIdTables: ['processed_updates'], heartbeatRows: 1 },
  shutdown: { readyTurned503: true, lameDuckMs: 1000, servedWhileDraining: true },
};
/** the lazyflow-layout fixture: required tier only */
const minimal: ContractObs = {
  imageUser: 'bun',
  boot: { answered: true },
  health: { status: 200, body: '{"status":"ok"}' },
  readyPath: '/health',
  ready: { status: 404, body: '' },
  healthcheck: { kind: 'bash', path: '/health', exitCode: 0, output: '' },
  brokenDb: { exited: false, health: { status: 503, body: '' } },
  db: { exists: true, journalMode: 'wal', userVersion: 0, ownerUid: 1000, updateIdTables: [], heartbeatRows: 0 },
  shutdown: { readyTurned503: false, lameDuckMs: null, servedWhileDraining: false },
};
const crashed = (readOnly: boolean): ContractObs => ({
  imageUser: 'bun', boot: { answered: false, exitedEarly: { exitCode: 1, logTail: readOnly ? 'EROFS: read-only file system, open /app/cache.json' : 'TypeError: x is undefined' }, ...(readOnly ? { readOnlyError: 'EROFS: read-only file system, open /app/cache.json' } : {}) },
});
const telegram: ContractObs = {
  imageUser: 'bun', boot: { answered: false, exitedEarly: { exitCode: 1, logTail: "error: Network request for 'setWebhook' failed!" }, telegramError: "error: Network request for 'setWebhook' failed!" },
};

type Row = [name: string, obs: ContractObs, expected: Record<string, ItemStatus>, exit: 0 | 1];
const rows: Row[] = [
  ['reference app: all pass', full, Object.fromEntries(ITEMS.map((i) => [i.id, 'pass'])), 0],
  ['required only: recommended missing', minimal,
    { port: 'pass', health: 'pass', healthcheck: 'pass', 'read-only-root': 'pass', 'non-root': 'pass', database: 'pass',
      'health-version': 'missing', readiness: 'missing', 'user-version': 'missing', 'jobs-heartbeat': 'missing', 'update-dedupe': 'missing' }, 0],
  ['image runs as root', { ...full, imageUser: '' }, { 'non-root': 'wrong' }, 1],
  ['USER set but files owned by root', { ...full, imageUser: 'app', db: { ...full.db!, ownerUid: 0 } }, { 'non-root': 'wrong' }, 1],
  ['USER 0:0', { ...full, imageUser: '0:0' }, { 'non-root': 'wrong' }, 1],
  ['uid other than 1000', { ...full, imageUser: 'node', db: { ...full.db!, ownerUid: 1001 } }, { 'non-root': 'wrong' }, 1],
  ['writes to its root filesystem', crashed(true), { 'read-only-root': 'wrong', port: 'unchecked', health: 'unchecked', database: 'unchecked' }, 1],
  ['crashes whatever the filesystem', crashed(false), { 'read-only-root': 'unchecked', port: 'unchecked' }, 1],
  ['exits because a Bot API call failed at start-up', telegram, { port: 'wrong', 'read-only-root': 'unchecked', health: 'unchecked' }, 1],
  ['nothing listens on PORT', { imageUser: 'bun', boot: { answered: false } }, { port: 'missing', health: 'unchecked' }, 1],
  ['no /health', { ...minimal, health: { status: 404, body: 'Not Found' } }, { health: 'missing', 'health-version': 'unchecked' }, 1],
  ['/health 500 with a good database', { ...minimal, health: { status: 500, body: '' } }, { health: 'wrong' }, 1],
  ['/health 200 with a corrupt database', { ...minimal, brokenDb: { exited: false, health: { status: 200, body: '{}' } } }, { health: 'wrong' }, 1],
  ['database outside DB_PATH', { ...minimal, db: { exists: false } }, { database: 'missing', 'user-version': 'unchecked', 'update-dedupe': 'unchecked' }, 1],
  ['database not in WAL', { ...minimal, db: { ...minimal.db!, journalMode: 'delete' } }, { database: 'wrong' }, 1],
  ['DB_PATH not SQLite', { ...minimal, db: { exists: true, error: 'file is not a database' } }, { database: 'wrong' }, 1],
  ['version empty', { ...full, health: ok({ status: 'ok', version: '' }) }, { 'health-version': 'wrong' }, 0],
  ['/ready never 503 after SIGTERM', { ...full, shutdown: { readyTurned503: false, lameDuckMs: null, servedWhileDraining: false } }, { readiness: 'wrong' }, 0],
  ['/ready 503 but stops serving at once', { ...full, shutdown: { readyTurned503: true, lameDuckMs: 0, servedWhileDraining: false } }, { readiness: 'wrong' }, 0],
  ['/ready 503 while serving', { ...full, ready: { status: 503, body: '' } }, { readiness: 'wrong' }, 0],
  ['ignores SIGTERM, no /ready', { ...minimal, shutdown: { readyTurned503: false, lameDuckMs: null, servedWhileDraining: false, stillServing: true } }, { readiness: 'missing' }, 0],
  ['/ready never 503 and ignores SIGTERM', { ...full, shutdown: { readyTurned503: false, lameDuckMs: null, servedWhileDraining: true, stillServing: true } }, { readiness: 'wrong' }, 0],
  ['healthcheck path the app does not have', { ...minimal, healthcheck: { kind: 'bash', path: '/health/write', exitCode: 1, output: 'health: HTTP/1.1 404 Not Found {"error":"not_found"}' } }, { healthcheck: 'missing' }, 1],
  ['no bash in the image', { ...minimal, healthcheck: { kind: 'bash', path: '/health', exitCode: 126, output: 'OCI runtime exec failed: exec failed: unable to start container process: exec: "bash": executable file not found in $PATH: unknown' } }, { healthcheck: 'wrong' }, 1],
  ['healthcheck path answers 503', { ...minimal, healthcheck: { kind: 'bun', path: '/health', exitCode: 1, output: 'health: 503 {"status":"error"}' } }, { healthcheck: 'wrong' }, 1],
  ['healthcheck not run (the app never answered)', { imageUser: 'bun', boot: { answered: false } }, { healthcheck: 'unchecked' }, 1],
  ['READY_PATH=/health although the app answers /ready', { ...full, readyPath: '/health' }, { readiness: 'wrong' }, 0],
  ['a readiness path of its own', { ...full, readyPath: '/live/ready' }, { readiness: 'pass' }, 0],
  ['heartbeat from the table only', { ...minimal, db: { ...minimal.db!, heartbeatRows: 2 } }, { 'jobs-heartbeat': 'pass' }, 0],
  ['jobs.lastTickAt null', { ...full, health: ok({ status: 'ok', version: 'v', jobs: { lastTickAt: null } }) }, { 'jobs-heartbeat': 'wrong' }, 0],
];

describe('contract verdicts', () => {
  it.each(rows)('%s', (_name, obs, expected, exit) => {
    const results = judgeContract(obs);
    const by = Object.fromEntries(results.map((r) => [r.id, r.status]));
    for (const [id, status] of Object.entries(expected)) expect(`${id}: ${by[id]}`).toBe(`${id}: ${status}`);
    expect(contractExitCode(results)).toBe(exit);
    for (const r of results) {
      if (r.status === 'missing' || r.status === 'wrong') expect(r.fix, `${r.id} has a fix`).toBeTruthy();
      else expect(r.fix).toBeUndefined();
      expect(r.runbook).toMatch(/^RUNBOOK\.md#/);
    }
  });

  it('required tier only for the gate', () => {
    const req = judgeContract(minimal, 'required');
    expect(req.map((r) => r.id)).toEqual(['port', 'health', 'healthcheck', 'read-only-root', 'non-root', 'database']);
    expect(contractExitCode(req)).toBe(0);
  });

  it('says when the app ignores SIGTERM', () => {
    const r = judgeContract({ ...minimal, shutdown: { readyTurned503: false, lameDuckMs: null, servedWhileDraining: false, stillServing: true } });
    expect(r.find((x) => x.id === 'readiness')!.detail).toMatch(/ignored SIGTERM/);
    expect(judgeContract(minimal).find((x) => x.id === 'readiness')!.detail).not.toMatch(/SIGTERM/);
  });

  it('the healthcheck verdict says what to set: HEALTHCHECK_PATH for a missing path, the Bun probe for an image without bash', () => {
    const by = (o: ContractObs) => judgeContract(o).find((x) => x.id === 'healthcheck')!;
    expect(by({ ...minimal, healthcheck: { kind: 'bash', path: '/health/write', exitCode: 1, output: 'health: HTTP/1.1 404 Not Found' } }).detail).toMatch(/no \/health\/write; set HEALTHCHECK_PATH=\/health/);
    expect(by({ ...minimal, healthcheck: { kind: 'bash', path: '/health', exitCode: 126, output: 'exec: "bash": executable file not found in $PATH' } }).detail).toMatch(/no bash.*docker\/compose\.bun-healthcheck\.yml/);
    expect(by(minimal).detail).toBe('the bash probe of GET /health -> 200');
  });

  it('recommended notices name the item and the RUNBOOK section, only for what the app lacks', () => {
    expect(recommendedNotices(judgeContract(full))).toEqual([]);
    const n = recommendedNotices(judgeContract(minimal));
    expect(n.map((x) => x.split(' ')[0])).toEqual(['health-version', 'readiness', 'user-version', 'jobs-heartbeat', 'update-dedupe']);
    for (const x of n) expect(x).toMatch(/\(recommended\) missing: .*\(RUNBOOK\.md#the-app-contract\)$/);
    expect(n[1]).toMatch(/READY_PATH=\/health: Caddy polls \/health/);
  });

  it('every item says what is lost, how the toolkit degrades and the fix', () => {
    for (const i of ITEMS) for (const k of ['requirement', 'without', 'degrades', 'fix', 'runbook'] as const) expect(i[k], `${i.id}.${k}`).toBeTruthy();
  });
});

describe('RUNBOOK', () => {
  it('"The app contract" carries the tables generated from items.mts', async () => {
    const { readFileSync } = await import('node:fs');
    const { contractMarkdown } = await import('../../scripts/lib/contract/items.mts');
    const runbook = readFileSync(new URL('../../RUNBOOK.md', import.meta.url), 'utf8');
    expect(runbook).toMatch(/^## The app contract$/m);
    const start = runbook.indexOf('<!-- contract:begin (generated from scripts/lib/contract/items.mts) -->');
    const end = runbook.indexOf('<!-- contract:end -->');
    expect(start, 'contract markers in RUNBOOK.md').toBeGreaterThan(0);
    const block = runbook.slice(runbook.indexOf('\n', start) + 1, end);
    expect(block, 'regenerate: node -e "import(\'./scripts/lib/contract/items.mts\').then(m => process.stdout.write(m.contractMarkdown()))"').toBe(contractMarkdown());
  });
});
