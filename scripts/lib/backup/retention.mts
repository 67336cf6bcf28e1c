// Backup retention with restic's `forget` semantics (internal/restic/snapshot_policy.go):
// backups sorted newest first; for each policy bucket (last, daily, ISO week, month) a backup is
// kept when its bucket value (YYYYMMDD, ISO YYYYWW, YYYYMM) differs from the previous kept one
// and the bucket still has counts left; the oldest backup is also kept while a bucket has counts
// left. On top of restic: the newest backup and the newest verified backup are always kept, and so
// is every backup a rollback can still use (rollbackPins): for each release whose image is still
// kept (the newest --keep-images release images, as rollout prunes them), the backup that holds its
// data (release/journal.mts backupWhileLive). Backups of releases whose image is gone are not
// pinned: no rollback can reach them, so the count stays bounded. Days, weeks and months are UTC.
import { backupWhileLive, type Release } from '../release/journal.mts';

export interface RetentionPolicy {
  last?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
}

export interface RetentionItem {
  id: string;
  createdAt: Date | string;
  /** a damaged backup never counts as the newest verified one (default true) */
  verified?: boolean;
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
  opts: { protectedIds?: Iterable<string> | Map<string, string> } = {},
): RetentionDecision[] {
  const pins = opts.protectedIds instanceof Map ? opts.protectedIds : new Map([...(opts.protectedIds ?? [])].map((id) => [id, 'protected']));
  const list = items
    .map((it) => ({ id: it.id, at: new Date(it.createdAt), verified: it.verified ?? true }))
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
  const newestVerified = list.find((it) => it.verified)?.id;
  return list.map((cur, nr) => {
    const reasons: string[] = [];
    if (nr === 0) reasons.push('newest');
    if (cur.id === newestVerified && nr !== 0) reasons.push('newest verified');
    const pin = pins.get(cur.id);
    if (pin) reasons.push(pin);
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

/**
 * Backups a rollback can still use, with why: for each of the newest `keepImages` release images
 * (the ones rollout keeps), the backup holding the data of its newest successful release; plus the
 * backup of a release still in progress (its recovery may restore it).
 */
export function rollbackPins(releases: Release[], keepImages: number): Map<string, string> {
  const pins = new Map<string, string>();
  const newestPerTag: Release[] = [];
  for (const r of [...releases].reverse()) {
    if (newestPerTag.length >= Math.max(1, keepImages)) break;
    if (r.result === 'ok' && r.appTag && !newestPerTag.some((x) => x.appTag === r.appTag)) newestPerTag.push(r);
  }
  for (const r of newestPerTag) {
    const b = backupWhileLive(releases, r);
    if (b && !pins.has(b.backupId)) pins.set(b.backupId, `rollback --with-db to ${r.appTag} uses it`);
  }
  for (const r of releases) {
    if (r.result === 'in-progress' && r.backupId && !pins.has(r.backupId)) pins.set(r.backupId, `release ${r.id} is unfinished`);
  }
  return pins;
}

export const DEFAULT_KEEP_IMAGES = 5;

/** the whole backup retention decision: the restic-style policy plus what a rollback can use */
export function decideBackupRetention(o: {
  backups: RetentionItem[];
  releases: Release[];
  policy: RetentionPolicy;
  keepImages: number;
  protectedIds?: Iterable<string>;
}): RetentionDecision[] {
  const pins = rollbackPins(o.releases, o.keepImages);
  for (const id of o.protectedIds ?? []) if (!pins.has(id)) pins.set(id, 'protected');
  return applyRetention(o.backups, o.policy, { protectedIds: pins });
}

/**
 * Pre-deploy backups are bounded when one is taken, not only by the daily retention: a day of many
 * deploys otherwise piles them up. The newest KEEP_PRE_DEPLOY are kept; an older one goes unless a
 * rollback or a recovery can still use it (rollbackPins: the backup of each release whose image
 * rollout keeps, and that of every unfinished release, so never the one the current release's revert
 * needs), or it is the newest (verified) backup of all.
 */
export const KEEP_PRE_DEPLOY = 10;

export function preDeployOverflow(o: {
  backups: (RetentionItem & { reason: string })[];
  releases: Release[];
  keep?: number;
  keepImages?: number;
  protectedIds?: Iterable<string>;
}): string[] {
  const pins = rollbackPins(o.releases, o.keepImages ?? DEFAULT_KEEP_IMAGES);
  for (const id of o.protectedIds ?? []) pins.set(id, 'protected');
  const newest = [...o.backups].sort((a, b) => new Date(b.createdAt).getTime() - new Date(a.createdAt).getTime());
  const always = new Set([newest[0]?.id, newest.find((b) => b.verified ?? true)?.id].filter(Boolean));
  const pre = newest.filter((b) => b.reason === 'pre-deploy');
  return pre.slice(Math.max(1, o.keep ?? KEEP_PRE_DEPLOY)).filter((b) => !pins.has(b.id) && !always.has(b.id)).map((b) => b.id);
}

// ---- kept-aside states (STATE_DIR/kept/) ------------------------------------------------------

export interface KeptPolicy {
  /** keep at most this many (newest first) */
  keepLast: number;
  /** and none older than this many days */
  maxAgeDays: number;
}

export const DEFAULT_KEPT_POLICY: KeptPolicy = { keepLast: 3, maxAgeDays: 30 };

/** which kept-aside states retention removes: beyond the newest keepLast, or older than maxAgeDays */
export function keptRetention(items: { name: string; createdAt: Date }[], policy: KeptPolicy, now: Date): { name: string; keep: boolean; why: string }[] {
  const sorted = [...items].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.name < b.name ? 1 : -1));
  return sorted.map((it, i) => {
    const ageDays = (now.getTime() - it.createdAt.getTime()) / 86_400_000;
    if (i >= policy.keepLast) return { name: it.name, keep: false, why: `beyond the newest ${policy.keepLast}` };
    if (ageDays > policy.maxAgeDays) return { name: it.name, keep: false, why: `older than ${policy.maxAgeDays} days` };
    return { name: it.name, keep: true, why: `one of the newest ${policy.keepLast}, ${Math.floor(ageDays)} days old` };
  });
}
