import { describe, expect, it } from 'vitest';
import { applyRetention, describePolicy, isoYearWeek, policyIsEmpty } from '../../scripts/lib/backup/retention.mts';

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

  it('never deletes a backup that a release in the journal names', () => {
    const list = series(20, 24);
    const pinned = '20250301T030000Z';
    const ds = applyRetention(list, { daily: 2 }, { protectedIds: [pinned] });
    expect(kept(ds)).toEqual(['20250315T030000Z', '20250314T030000Z', pinned]);
    expect(ds.find((d) => d.id === pinned)?.reasons).toEqual(['named by a release in the journal']);
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
