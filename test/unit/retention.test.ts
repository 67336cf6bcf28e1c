import { describe, expect, it } from 'vitest';
import { applyRetention, decideBackupRetention, describePolicy, isoYearWeek, keptRetention, KEEP_PRE_DEPLOY, policyIsEmpty, preDeployOverflow, rollbackPins } from '../../scripts/lib/backup/retention.mts';
import { makeBackupId } from '../../scripts/lib/backup/manifest.mts';
import { backupWhileLive, type Release } from '../../scripts/lib/release/journal.mts';

// A fixed clock: backups are generated relative to this instant, never to Date.now().
const NOW = new Date('2025-03-15T03:00:00Z'); // a Saturday

function hoursAgo(h: number) {
  return new Date(NOW.getTime() - h * 3600_000);
}
function id(d: Date) {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}
/** one backup every `everyH` hours for `days` days, newest at NOW */
function series(days: number, everyH: number) {
  const out = [];
  for (let h = 0; h < days * 24; h += everyH) {
    const at = hoursAgo(h);
    out.push({ id: id(at), createdAt: at });
  }
  return out;
}
const kept = (ds: { id: string; keep: boolean }[]) => ds.filter((d) => d.keep).map((d) => d.id);
const removed = (ds: { id: string; keep: boolean }[]) => ds.filter((d) => !d.keep).map((d) => d.id);

describe('isoYearWeek', () => {
  it('follows ISO 8601 at year boundaries', () => {
    expect(isoYearWeek(new Date('2025-03-15T12:00:00Z'))).toBe(202511);
    expect(isoYearWeek(new Date('2024-12-30T00:00:00Z'))).toBe(202501); // Monday of week 1 of 2025
    expect(isoYearWeek(new Date('2021-01-03T23:59:59Z'))).toBe(202053); // Sunday, still 2020-W53
    expect(isoYearWeek(new Date('2021-01-04T00:00:00Z'))).toBe(202101);
    expect(isoYearWeek(new Date('2026-12-31T00:00:00Z'))).toBe(202653);
  });
});

describe('applyRetention (restic semantics, fixed clock)', () => {
  it('an empty policy keeps everything', () => {
    const ds = applyRetention(series(3, 6), {});
    expect(ds.every((d) => d.keep)).toBe(true);
    expect(policyIsEmpty({ daily: 0 })).toBe(true);
  });

  it('--keep-daily N keeps the newest backup of each of the last N days that have backups', () => {
    // 4 backups a day (00, 18, 12, 06 UTC ... relative to 03:00), 10 days
    const list = series(10, 6);
    const ds = applyRetention(list, { daily: 3 });
    const k = kept(ds);
    expect(k).toEqual(['20250315T030000Z', '20250314T210000Z', '20250313T210000Z']);
    expect(removed(ds)).toHaveLength(list.length - 3);
  });

  it('keeps the oldest backup too while a bucket still has counts left (restic >= 0.15)', () => {
    const list = [
      { id: 'c', createdAt: '2025-03-15T01:00:00Z' },
      { id: 'b', createdAt: '2025-03-15T00:30:00Z' },
      { id: 'a', createdAt: '2025-03-14T09:00:00Z' },
      { id: 'z', createdAt: '2025-03-14T08:00:00Z' },
    ];
    // daily 5 but only 2 days: c (15th), a (14th), and the oldest z because counts are left
    expect(kept(applyRetention(list, { daily: 5 }))).toEqual(['c', 'a', 'z']);
    // daily 2: both counts used by c and a, so z goes
    expect(kept(applyRetention(list, { daily: 2 }))).toEqual(['c', 'a']);
  });

  it('--keep-weekly uses ISO weeks (Monday..Sunday) and keeps the newest backup of each', () => {
    const list = series(30, 24); // one per day at 03:00 for 30 days, newest Sat 2025-03-15
    const ds = applyRetention(list, { weekly: 3 });
    // newest of W11 = Sat 15th, of W10 = Sun 9th, of W09 = Sun 2nd
    expect(kept(ds)).toEqual(['20250315T030000Z', '20250309T030000Z', '20250302T030000Z']);
  });

  it('--keep-monthly keeps the newest backup of each month', () => {
    const list = series(100, 24);
    const ds = applyRetention(list, { monthly: 3 });
    expect(kept(ds)).toEqual(['20250315T030000Z', '20250228T030000Z', '20250131T030000Z']);
  });

  it('combines daily, weekly and monthly: a backup kept by several buckets counts in each', () => {
    const list = series(100, 24);
    const ds = applyRetention(list, { daily: 7, weekly: 4, monthly: 3 });
    const k = kept(ds);
    // 7 dailies: 15..9 March; weeklies: 15 (W11), 9 (W10), 2 (W09), 23 Feb (W08);
    // monthlies: 15 Mar, 28 Feb, 31 Jan
    expect(k).toEqual([
      '20250315T030000Z',
      '20250314T030000Z',
      '20250313T030000Z',
      '20250312T030000Z',
      '20250311T030000Z',
      '20250310T030000Z',
      '20250309T030000Z',
      '20250302T030000Z',
      '20250228T030000Z',
      '20250223T030000Z',
      '20250131T030000Z',
    ]);
    const reasons = Object.fromEntries(ds.map((d) => [d.id, d.reasons]));
    expect(reasons['20250315T030000Z']).toEqual(['newest', 'daily', 'weekly', 'monthly']);
    expect(reasons['20250309T030000Z']).toEqual(['daily', 'weekly']);
    expect(reasons['20250228T030000Z']).toEqual(['monthly']);
  });

  it('never deletes the newest backup, even with a policy that keeps nothing of its kind', () => {
    const list = [
      { id: 'new', createdAt: '2025-03-15T02:00:00Z' },
      { id: 'old', createdAt: '2025-01-01T02:00:00Z' },
    ];
    const ds = applyRetention(list, { monthly: 1 });
    expect(kept(ds)).toEqual(['new']);
    // --keep-last 0 style policies cannot remove the newest either
    expect(kept(applyRetention([list[0]], { daily: 1 }))).toEqual(['new']);
  });

  it('never deletes a protected backup', () => {
    const list = series(20, 24);
    const pinned = '20250301T030000Z';
    const ds = applyRetention(list, { daily: 2 }, { protectedIds: [pinned] });
    expect(kept(ds)).toEqual(['20250315T030000Z', '20250314T030000Z', pinned]);
    expect(ds.find((d) => d.id === pinned)?.reasons).toEqual(['protected']);
  });

  it('is independent of input order and of the wall clock', () => {
    const list = series(10, 8);
    const shuffled = [...list].reverse();
    expect(applyRetention(shuffled, { daily: 4 })).toEqual(applyRetention(list, { daily: 4 }));
  });

  it('describes the policy', () => {
    expect(describePolicy({ daily: 7, weekly: 4, monthly: 6 })).toBe('keep 7 daily, 4 weekly, 6 monthly');
  });
});

// A simulated year on a fake clock: three deploys a day (each with its pre-deploy backup, one in ten
// rolled back), a daily cron backup with the documented flags (--keep-daily 7 --keep-weekly 4
// --keep-monthly 6, rollout's --keep-images 5). The number of backups stays bounded, and every
// release whose image is still kept can roll back with its data (rollback --with-db finds its backup).
const POLICY = { daily: 7, weekly: 4, monthly: 6 };
const KEEP_IMAGES = 5;
const DAY = 86_400_000;

interface B { id: string; createdAt: Date }

function simulateYear(keepImages = KEEP_IMAGES) {
  const start = Date.UTC(2026, 0, 1);
  let backups: B[] = [];
  const releases: Release[] = [];
  let current: Release | null = null;
  let n = 0;
  const counts: number[] = [];
  const problems: string[] = [];
  for (let day = 0; day < 365; day++) {
    const at = (h: number, m = 0) => new Date(start + day * DAY + h * 3_600_000 + m * 60_000);
    // cron 03:17: a backup, then retention
    const cron = at(3, 17);
    backups.push({ id: makeBackupId(cron, 'cron'), createdAt: cron });
    const decisions = decideBackupRetention({ backups, releases, policy: POLICY, keepImages });
    const keep = new Set(decisions.filter((d) => d.keep).map((d) => d.id));
    backups = backups.filter((b) => keep.has(b.id));
    counts.push(backups.length);
    // every release whose image is kept (other than the live one) can roll back with its data
    const kept: Release[] = [];
    for (const r of [...releases].reverse()) {
      if (kept.length >= keepImages) break;
      if (r.result === 'ok' && r.appTag && !kept.some((k) => k.appTag === r.appTag)) kept.push(r);
    }
    for (const r of kept) {
      if (r === current) continue;
      const b = backupWhileLive(releases, r);
      if (!b) problems.push(`day ${day}: no data backup for ${r.appTag}`);
      else if (!keep.has(b.backupId)) problems.push(`day ${day}: the data backup ${b.backupId} of ${r.appTag} was deleted`);
    }
    // three deploys
    for (const h of [10, 14, 18]) {
      const t = at(h);
      const id = makeBackupId(t, 'pre-deploy');
      backups.push({ id, createdAt: t });
      const failed = ++n % 10 === 0;
      const r: Release = {
        id: `${id}-r${n}`, kind: 'rollout', appTag: `tag${n}`, startedAt: t.toISOString(), result: failed ? 'rolled-back' : 'ok',
        backupId: id, previousRelease: current?.id ?? null, previousAppTag: current?.appTag, lines: 1,
      };
      releases.push(r);
      if (!failed) current = r;
    }
  }
  return { counts, problems, backups, releases };
}

describe('retention over a simulated year', () => {
  it('keeps the number of backups bounded and every kept release able to roll back with its data', () => {
    const { counts, problems } = simulateYear();
    expect(problems).toEqual([]);
    // restic buckets (7 + 4 + 6, plus the oldest) + one pin per kept image + newest: never more
    const bound = POLICY.daily + POLICY.weekly + POLICY.monthly + 1 + KEEP_IMAGES + 1;
    expect(Math.max(...counts)).toBeLessThanOrEqual(bound);
    // and it does not creep: the second half of the year holds no more than the first
    expect(Math.max(...counts.slice(182))).toBeLessThanOrEqual(Math.max(...counts.slice(0, 182)) + 1);
    // the old behaviour (pin every release's backup) would hold > 1000 after a year
    expect(counts.at(-1)).toBeLessThan(40);
  });

  it('pins only what a kept image can use: a smaller --keep-images pins fewer', () => {
    const { releases } = simulateYear();
    expect(rollbackPins(releases, 5).size).toBeLessThanOrEqual(5);
    expect(rollbackPins(releases, 1).size).toBeLessThanOrEqual(1);
    expect(rollbackPins(releases, 5).size).toBeGreaterThan(rollbackPins(releases, 2).size);
  });

  it('a release in progress keeps its backup (its recovery may restore it)', () => {
    const rs: Release[] = [{ id: 'r1', kind: 'rollout', appTag: 'a', result: 'in-progress', backupId: 'b1', lines: 1 }];
    expect(rollbackPins(rs, 5).get('b1')).toMatch(/unfinished/);
  });

  it('the newest verified backup is kept even when newer ones are damaged', () => {
    const ds = decideBackupRetention({
      backups: [
        { id: 'bad', createdAt: '2026-03-02T03:17:00Z', verified: false },
        { id: 'good', createdAt: '2026-03-01T03:17:00Z', verified: true },
        { id: 'older', createdAt: '2026-02-01T03:17:00Z', verified: true },
      ],
      releases: [], policy: { last: 1 }, keepImages: 5,
    });
    expect(ds.filter((d) => d.keep).map((d) => d.id)).toEqual(['bad', 'good']);
    expect(ds.find((d) => d.id === 'good')?.reasons).toContain('newest verified');
  });
});

describe('kept-aside states retention', () => {
  const now = new Date('2026-06-30T00:00:00Z');
  const item = (name: string, daysAgo: number) => ({ name, createdAt: new Date(now.getTime() - daysAgo * DAY) });
  it('keeps the newest N younger than the maximum age, removes the rest', () => {
    const ds = keptRetention([item('a', 1), item('b', 2), item('c', 40), item('d', 3), item('e', 4)], { keepLast: 3, maxAgeDays: 30 }, now);
    expect(ds.map((d) => [d.name, d.keep])).toEqual([['a', true], ['b', true], ['d', true], ['e', false], ['c', false]]);
    expect(ds.find((d) => d.name === 'c')?.why).toMatch(/beyond the newest 3|older than 30 days/);
  });
  it('an old kept state goes even if it is the only one', () => {
    expect(keptRetention([item('x', 31)], { keepLast: 3, maxAgeDays: 30 }, now)[0].keep).toBe(false);
  });
});

describe('pre-deploy backups: bounded when one is taken', () => {
  // one pre-deploy backup per deploy, every hour, newest first at NOW; p0 is the one just taken
  const pre = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `p${i}`, createdAt: hoursAgo(i), reason: 'pre-deploy' }));
  const rollout = (i: number, o: Partial<Release> = {}): Release => ({ id: `r${i}`, kind: 'rollout', appTag: `t${i}`, result: 'ok', backupId: `p${i}`, previousAppTag: `t${i + 1}`, lines: 1, ...o });

  const rows: { name: string; backups: { id: string; createdAt: Date; reason: string; verified?: boolean }[]; releases: Release[]; keep?: number; protectedIds?: string[]; drop: string[] }[] = [
    { name: `at most ${KEEP_PRE_DEPLOY}: nothing goes`, backups: pre(KEEP_PRE_DEPLOY), releases: [], drop: [] },
    { name: 'past the bound the oldest go', backups: pre(KEEP_PRE_DEPLOY + 3), releases: [], drop: ['p10', 'p11', 'p12'] },
    { name: 'keep 2', backups: pre(4), releases: [], keep: 2, drop: ['p2', 'p3'] },
    { name: 'never below one, whatever the setting', backups: pre(3), releases: [], keep: 0, drop: ['p1', 'p2'] },
    {
      name: "the unfinished release's backup (its revert restores it) stays, however old",
      backups: pre(4), releases: [rollout(3, { result: 'in-progress' })], keep: 2, drop: ['p2'],
    },
    {
      // r3 deployed t3 over t4, taking p3: rollback --with-db to t4 restores p3 (journal order: oldest first)
      name: 'a backup a rollback --with-db to a kept image uses stays',
      backups: pre(4), releases: [{ id: 'r4', kind: 'rollout', appTag: 't4', result: 'ok', lines: 1 }, rollout(3)], keep: 2, drop: ['p2'],
    },
    { name: 'protected ids stay (a restore in progress)', backups: pre(4), releases: [], keep: 2, protectedIds: ['p3'], drop: ['p2'] },
    {
      name: 'other backups neither count nor go',
      backups: [...pre(3), { id: 'c0', createdAt: hoursAgo(0.5), reason: 'cron' }, { id: 'c1', createdAt: hoursAgo(100), reason: 'cron' }], releases: [], keep: 1, drop: ['p1', 'p2'],
    },
    {
      name: 'the newest verified backup of all stays even when it is an old pre-deploy one',
      backups: [...pre(3).map((b, i) => ({ ...b, verified: i === 2 }))], releases: [], keep: 1, drop: ['p1'],
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      expect(preDeployOverflow({ backups: r.backups, releases: r.releases, keep: r.keep, protectedIds: r.protectedIds }).sort()).toEqual([...r.drop].sort());
    });
  }
});
