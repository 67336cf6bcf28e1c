// Backup retention with restic's `forget` semantics (internal/restic/snapshot_policy.go):
// backups sorted newest first; for each policy bucket (last, daily, ISO week, month) a backup is
// kept when its bucket value (YYYYMMDD, ISO YYYYWW, YYYYMM) differs from the previous kept one
// and the bucket still has counts left; the oldest backup is also kept while a bucket has counts
// left. On top of restic: the newest backup is always kept, and so is every backup a release in
// the releases journal names (its pre-deploy backup is what rollback --with-db restores).
// Days, weeks and months are computed in UTC.

export interface RetentionPolicy {
  last?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
}

export interface RetentionItem {
  id: string;
  createdAt: Date | string;
}

export interface RetentionDecision {
  id: string;
  createdAt: string;
  keep: boolean;
  reasons: string[];
}

export function policyIsEmpty(p: RetentionPolicy): boolean {
  return !p.last && !p.daily && !p.weekly && !p.monthly;
}

export function describePolicy(p: RetentionPolicy): string {
  const parts: string[] = [];
  if (p.last) parts.push(`${p.last} last`);
  if (p.daily) parts.push(`${p.daily} daily`);
  if (p.weekly) parts.push(`${p.weekly} weekly`);
  if (p.monthly) parts.push(`${p.monthly} monthly`);
  return parts.length ? `keep ${parts.join(', ')}` : 'no policy';
}

/** ISO 8601 week-numbering year and week of a UTC date, as YYYYWW */
export function isoYearWeek(d: Date): number {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7; // Monday=1 .. Sunday=7
  t.setUTCDate(t.getUTCDate() + 4 - day); // the Thursday of this week decides the year
  const year = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7);
  return year * 100 + week;
}

const ymd = (d: Date) => d.getUTCFullYear() * 10000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate();
const ym = (d: Date) => d.getUTCFullYear() * 100 + (d.getUTCMonth() + 1);

export function applyRetention(
  items: RetentionItem[],
  policy: RetentionPolicy,
  opts: { protectedIds?: Iterable<string> } = {},
): RetentionDecision[] {
  const protectedIds = new Set(opts.protectedIds ?? []);
  const list = items
    .map((it) => ({ id: it.id, at: new Date(it.createdAt) }))
    .sort((a, b) => b.at.getTime() - a.at.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  for (const it of list) {
    if (Number.isNaN(it.at.getTime())) throw new Error(`backup ${it.id} has an invalid creation time`);
  }
  if (policyIsEmpty(policy)) {
    return list.map((it) => ({ id: it.id, createdAt: it.at.toISOString(), keep: true, reasons: ['no policy'] }));
  }
  const buckets = [
    { count: policy.last ?? 0, bucket: (_d: Date, nr: number) => nr, last: -1, reason: 'last' },
    { count: policy.daily ?? 0, bucket: (d: Date) => ymd(d), last: -1, reason: 'daily' },
    { count: policy.weekly ?? 0, bucket: (d: Date) => isoYearWeek(d), last: -1, reason: 'weekly' },
    { count: policy.monthly ?? 0, bucket: (d: Date) => ym(d), last: -1, reason: 'monthly' },
  ];
  return list.map((cur, nr) => {
    const reasons: string[] = [];
    if (nr === 0) reasons.push('newest');
    if (protectedIds.has(cur.id)) reasons.push('named by a release in the journal');
    for (const b of buckets) {
      if (b.count > 0) {
        const val = b.bucket(cur.at, nr);
        // restic also keeps the oldest backup while a bucket has counts left
        if (val !== b.last || nr === list.length - 1) {
          b.last = val;
          b.count--;
          reasons.push(b.reason);
        }
      }
    }
    return { id: cur.id, createdAt: cur.at.toISOString(), keep: reasons.length > 0, reasons };
  });
}
