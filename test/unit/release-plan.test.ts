import { describe, it, expect } from 'vitest';
import { appTagFor, buildArgs, decideRollback, imagesToPrune, isDirtyPorcelain, rolloutPlan, ROLLOUT_PHASES } from '../../scripts/lib/release/plan.mts';
import { parseJournal } from '../../scripts/lib/release/journal.mts';

describe('release plan', () => {
  it('phases in the documented order', () => {
    expect(ROLLOUT_PHASES).toEqual(['preflight', 'lock', 'build', 'contract', 'backup', 'swap', 'health', 'telegram', 'smoke', 'record', 'notify']);
  });

  it('tags with the sha; dirty trees get a visible marker and a timestamp', () => {
    const now = new Date('2025-03-01T12:34:56Z');
    expect(appTagFor({ sha: '0123456789abcdef0123', dirty: false }, now)).toBe('0123456789ab');
    expect(appTagFor({ sha: '0123456789abcdef0123', dirty: true }, now)).toBe('0123456789ab-dirty-20250301123456');
    expect(isDirtyPorcelain('')).toBe(false);
    expect(isDirtyPorcelain(' M app/src/x.ts\n')).toBe(true);
  });

  it('build command is data', () => {
    const b = buildArgs({ contextDir: '/src', image: 'lazyflow-app', appTag: 'abc', buildArgs: { BUN_IMAGE: 'bun:x', EMPTY: '' }, labels: { 'org.lazyflow.release': 'abc' } });
    expect(b.ref).toBe('lazyflow-app:abc');
    expect(b.argv).toEqual(['build', '--tag', 'lazyflow-app:abc', '--file', '/src/Dockerfile',
      '--build-arg', 'APP_VERSION=abc', '--build-arg', 'BUN_IMAGE=bun:x', '--label', 'org.lazyflow.release=abc', '/src']);
  });

  describe('auto-rollback decision', () => {
    const previous = { id: 'r1', appTag: 'v1' };
    it('schema moved -> restore the pre-deploy backup', () => {
      const d = decideRollback({ previous, userVersionBefore: 3, userVersionAfter: 4, backupId: 'b1' });
      expect(d).toMatchObject({ toAppTag: 'v1', restoreDb: true, backupId: 'b1' });
      expect(d.why.join(' ')).toMatch(/user_version 3 -> 4/);
    });
    it('schema unchanged -> keep data', () => {
      const d = decideRollback({ previous, userVersionBefore: 3, userVersionAfter: 3, backupId: 'b1' });
      expect(d.restoreDb).toBe(false);
      expect(d.why.join(' ')).toMatch(/data kept/);
    });
    it('unreadable after -> restore to be safe', () => {
      expect(decideRollback({ previous, userVersionBefore: 3, userVersionAfter: null, backupId: 'b1' }).restoreDb).toBe(true);
    });
    it('no backup -> cannot restore, says so', () => {
      const d = decideRollback({ previous, userVersionBefore: 3, userVersionAfter: 4, backupId: null });
      expect(d.restoreDb).toBe(false);
      expect(d.why.join(' ')).toMatch(/CANNOT restore/);
    });
    it('first deploy -> nothing to go back to', () => {
      const d = decideRollback({ previous: undefined, userVersionBefore: null, userVersionAfter: 1, backupId: null });
      expect(d.toAppTag).toBeNull();
      expect(d.restoreDb).toBe(false);
    });
  });

  it('prunes only journal tags beyond the newest N, protecting the live one', () => {
    const releases = parseJournal(['v1', 'v2', 'v3', 'v4', 'v5'].map((t, i) => JSON.stringify({ id: `r${i}`, appTag: t, result: i === 3 ? 'rolled-back' : 'ok' })).join('\n')).releases;
    const prune = imagesToPrune({ localTags: ['v1', 'v2', 'v3', 'v4', 'v5', 'local', 'e2e-x'], releases, keep: 2, protect: ['v1'] });
    // newest ok distinct: v5, v3 ; protected v1 ; v4 failed -> pruned ; local, e2e-x unknown -> kept
    expect(prune.sort()).toEqual(['v2', 'v4']);
  });

  it('dry-run plan lists every phase and the failure path', () => {
    const steps = rolloutPlan({
      appTag: 'abc', image: 'lazyflow-app', dirty: false, previous: { id: 'r1', appTag: 'v1' },
      build: buildArgs({ contextDir: '/src', image: 'lazyflow-app', appTag: 'abc' }),
      composeUp: ['compose', 'up', 'app'], keepImages: 5, telegram: false, notify: false,
    });
    for (const p of ROLLOUT_PHASES) expect(steps.some((s) => s.phase === p)).toBe(true);
    expect(steps.at(-1)!.what).toMatch(/roll back to r1/);
  });

  it('dry-run plan of a polling bot: stop-first, health in the container, no webhook expected, no Caddy', () => {
    const steps = rolloutPlan({
      appTag: 'abc', image: 'bot', dirty: false, previous: { id: 'r1', appTag: 'v1' },
      build: buildArgs({ contextDir: '/src', image: 'bot', appTag: 'abc' }),
      composeUp: ['compose', 'up', 'app'], keepImages: 5, telegram: true, notify: false, polling: true,
    });
    const what = Object.fromEntries(steps.map((s) => [s.phase, s.what]));
    expect(what.swap).toMatch(/stop the old poller gracefully first \(already stopped for the backup\), then start bot:abc/);
    expect(what.backup).toMatch(/^stop the old poller first .*then the pre-deploy backup/);
    expect(what.health).toMatch(/own healthcheck/);
    expect(what.telegram).toMatch(/no webhook set/);
    expect(steps.map((s) => s.what).join('\n')).not.toMatch(/Caddy(file| holds)|through Caddy/);
  });
});
