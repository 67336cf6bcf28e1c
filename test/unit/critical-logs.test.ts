// The detached critical section's parts that need no Docker: its log files stay bounded (one per
// rollout, rollback or restore, pruned to the newest CRITICAL_LOGS_KEPT when the next one starts),
// and a failure in the worker reaches the parent with the same message, hint and exit code.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CRITICAL_LOGS_KEPT, criticalLogsToPrune, describeJob, pruneCriticalLogs, workerError } from '../../scripts/lib/release/critical.mts';
import { EXIT_USAGE } from '../../scripts/lib/cli/errors.mts';

const dir = mkdtempSync(join(tmpdir(), 'critical-logs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('criticalLogsToPrune', () => {
  const f = (name: string, mtimeMs: number) => ({ name, mtimeMs });
  it.each([
    { name: 'nothing beyond the bound', files: [f('critical-a.log', 1), f('critical-b.log', 2)], keep: 2, gone: [] },
    { name: 'the oldest beyond the bound, by mtime not name', files: [f('critical-z.log', 1), f('critical-a.log', 3), f('critical-m.log', 2)], keep: 2, gone: ['critical-z.log'] },
    { name: 'never anything but critical-*.log', files: [f('ops.log', 0), f('backup.log', 0), f('critical-x.log.1', 0), f('critical-a.log', 5), f('critical-b.log', 6)], keep: 1, gone: ['critical-a.log'] },
    { name: 'keep 0 removes them all', files: [f('critical-a.log', 1), f('critical-b.log', 2)], keep: 0, gone: ['critical-b.log', 'critical-a.log'] },
    { name: 'equal mtimes: the later name (a later id) is newer', files: [f('critical-20261201T000000Z-rollout.log', 7), f('critical-20261202T000000Z-rollout.log', 7)], keep: 1, gone: ['critical-20261201T000000Z-rollout.log'] },
  ])('$name', ({ files, keep, gone }) => {
    expect(criticalLogsToPrune(files, keep)).toEqual(gone);
  });
});

describe('pruneCriticalLogs', () => {
  it('a year of operations (several a day) leaves the newest CRITICAL_LOGS_KEPT and every other log untouched', () => {
    const logs = join(dir, 'year');
    mkdirSync(logs);
    writeFileSync(join(logs, 'ops.log'), 'x');
    writeFileSync(join(logs, 'watch.log'), 'x');
    const t0 = Date.UTC(2026, 0, 1) / 1000;
    const ids: string[] = [];
    for (let i = 0; i < 365 * 3; i++) {
      // what runDetached does before each operation: prune, then create its own log
      pruneCriticalLogs(logs, CRITICAL_LOGS_KEPT);
      const id = `${i % 3 === 2 ? 'restore-' : ''}${String(i).padStart(4, '0')}`;
      const p = join(logs, `critical-${id}.log`);
      writeFileSync(p, `operation ${i}\n`);
      const t = t0 + i * 8 * 3600;
      utimesSync(p, t, t);
      ids.push(id);
    }
    const left = readdirSync(logs).sort();
    expect(left.filter((n) => !n.startsWith('critical-'))).toEqual(['ops.log', 'watch.log']);
    // the one just created plus the newest before it: never more than the bound + 1 between two operations
    expect(left.filter((n) => n.startsWith('critical-')).sort()).toEqual(ids.slice(-(CRITICAL_LOGS_KEPT + 1)).map((id) => `critical-${id}.log`).sort());
  });
  it('a missing logs directory is nothing to prune', () => {
    expect(pruneCriticalLogs(join(dir, 'absent'), 3)).toEqual([]);
  });
});

describe('the parent tells the operator what continues where', () => {
  const env = { file: '/srv/lazyflow/.env.prod' };
  it.each([
    { kind: undefined, what: 'the swap of 20261202T120000Z-rollout', result: 'node scripts/rollback.mts --config /srv/lazyflow/.env.prod --list' },
    { kind: 'rollback', what: 'the swap of 20261202T120000Z-rollout', result: 'node scripts/rollback.mts --config /srv/lazyflow/.env.prod --list' },
    { kind: 'restore', what: 'the restore of backup 20261201T030000Z-cron', result: 'node scripts/restore.mts --config /srv/lazyflow/.env.prod --list' },
  ])('$kind', ({ kind, what, result }) => {
    const job = { kind, id: '20261202T120000Z-rollout', backupId: '20261201T030000Z-cron' } as never;
    expect(describeJob(env, job)).toMatchObject({ what, result });
  });
  it('a worker error keeps its message (with the step), hint and exit code', () => {
    const e = workerError({ message: 'restore: restore of X rolled back', step: 'restore', hint: 'check the app logs', exitCode: EXIT_USAGE });
    expect(e.message).toBe('restore: restore of X rolled back');
    expect(e.step).toBe('restore');
    expect(e.hint).toBe('check the app logs');
    expect(e.exitCode).toBe(EXIT_USAGE);
  });
});
