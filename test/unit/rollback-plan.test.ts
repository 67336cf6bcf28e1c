import { describe, it, expect } from 'vitest';
import { parseJournal } from '../../scripts/lib/release/journal.mts';
import { planRollback } from '../../scripts/lib/release/rollback.mts';
import { ConfigError, UsageError } from '../../scripts/lib/cli/errors.mts';

const rel = (o: Record<string, unknown>) => JSON.stringify(o);
const releases = parseJournal([
  rel({ id: 'r1', kind: 'rollout', appTag: 'v1', gitSha: 'aaaa1111', result: 'ok', backupId: null, userVersionAfter: 2 }),
  rel({ id: 'r2', kind: 'rollout', appTag: 'v2', gitSha: 'bbbb2222', result: 'ok', backupId: 'b-r2', previousAppTag: 'v1', previousRelease: 'r1', userVersionAfter: 3 }),
].join('\n')).releases;

describe('rollback plan', () => {
  it('defaults to the previous successful release, data kept', () => {
    const p = planRollback(releases, { liveTag: 'v2', userVersionNow: 2 });
    expect(p.target.id).toBe('r1');
    expect(p.backupId).toBeNull();
  });

  it('refuses a target whose schema is older than the database, unless --with-db or --force', () => {
    expect(() => planRollback(releases, { liveTag: 'v2', userVersionNow: 3 })).toThrow(ConfigError);
    expect(() => planRollback(releases, { liveTag: 'v2', userVersionNow: 3 })).toThrow(/user_version 3/);
    expect(planRollback(releases, { liveTag: 'v2', userVersionNow: 3, force: true }).warnings.join()).toMatch(/--force/);
    const p = planRollback(releases, { liveTag: 'v2', userVersionNow: 3, withDb: true });
    expect(p.backupId).toBe('b-r2');
    expect(p.backupFrom).toBe('r2');
  });

  it('--to by sha prefix; unknown target is a usage error naming --list', () => {
    expect(planRollback(releases, { to: 'bbbb', liveTag: 'v1', userVersionNow: 3 }).target.id).toBe('r2');
    try {
      planRollback(releases, { to: 'nope', liveTag: 'v1', userVersionNow: 3 });
      throw new Error('expected a throw');
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      expect((e as UsageError).hint).toMatch(/--list/);
    }
  });

  it('nothing to roll back to', () => {
    expect(() => planRollback(releases.slice(0, 1), { liveTag: 'v1', userVersionNow: 2 })).toThrow(/no earlier successful release/);
  });

  it('--with-db without a backup holding the data is refused', () => {
    expect(() => planRollback(releases, { to: 'r2', withDb: true, liveTag: 'v1', userVersionNow: 3 })).toThrow(/no pre-deploy backup/);
  });

  it('warns when the target already runs', () => {
    expect(planRollback(releases, { to: 'r2', liveTag: 'v2', userVersionNow: 3 }).warnings.join()).toMatch(/already runs/);
  });
});
