// Releases journal: STATE_DIR/releases.jsonl, one JSON object per line.
//
// A release is written as several lines with the same `id` (a start line, progress lines, a final
// line); readers fold them, the last line wins field by field. That keeps every write a single
// small O_APPEND write (atomic on a local filesystem), never a rewrite of the file, so a crash can
// at worst leave a torn LAST line, which readers skip and the next append does not glue onto.
//
// Line shape (contract): {id, kind:"rollout"|"rollback", gitSha, image, appTag, operator, startedAt,
// endedAt, result:"ok"|"failed"|"rolled-back", backupId, previousRelease, phases:{[name]: ms},
// reason?, dirty?}. While a release runs, result is "in-progress" and `phase` names where it is.
import fs from 'node:fs';
import { formatAge } from '../cli/log.mts';
import { writeTextAtomic } from '../host/records.mts';

export type ReleaseKind = 'rollout' | 'rollback' | 'recovery';
export type ReleaseResult = 'in-progress' | 'ok' | 'failed' | 'rolled-back';

export interface ReleaseLine {
  id: string;
  kind?: ReleaseKind;
  gitSha?: string;
  image?: string;
  appTag?: string;
  operator?: string;
  startedAt?: string;
  endedAt?: string;
  result?: ReleaseResult;
  backupId?: string | null;
  previousRelease?: string | null;
  phases?: Record<string, number>;
  phase?: string;
  reason?: string;
  dirty?: boolean;
  userVersionBefore?: number | null;
  userVersionAfter?: number | null;
  dbRestored?: boolean;
  rolledBackTo?: string | null;
  [key: string]: unknown;
}

export type Release = ReleaseLine & { lines: number };

export interface JournalRead {
  releases: Release[];
  /** lines that did not parse (1-based line numbers); a torn last line is expected after a crash */
  skipped: { line: number; text: string }[];
}

/** Parse the journal text. Tolerant: unparsable lines are skipped and reported. */
export function parseJournal(text: string): JournalRead {
  const byId = new Map<string, Release>();
  const skipped: JournalRead['skipped'] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      skipped.push({ line: i + 1, text: line.slice(0, 120) });
      return;
    }
    if (!obj || typeof obj !== 'object' || typeof (obj as ReleaseLine).id !== 'string') {
      skipped.push({ line: i + 1, text: line.slice(0, 120) });
      return;
    }
    const l = obj as ReleaseLine;
    const prev = byId.get(l.id);
    if (prev) {
      // Fold: later lines win, phases merge.
      const phases = { ...(prev.phases ?? {}), ...(l.phases ?? {}) };
      Object.assign(prev, l, { phases, lines: prev.lines + 1 });
    } else {
      byId.set(l.id, { ...l, phases: { ...(l.phases ?? {}) }, lines: 1 });
    }
  });
  // Map keeps insertion order = order of first appearance = chronological start order.
  return { releases: [...byId.values()], skipped };
}

export function readJournal(file: string): JournalRead {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { releases: [], skipped: [] };
    throw e;
  }
  return parseJournal(text);
}

/**
 * Append one line with a single write on an O_APPEND descriptor, then fsync. If the file does not
 * end in a newline (a torn line from a crash), the write starts with one, so the new line stays whole.
 * Callers hold the operation lock, so the tail check cannot race another writer of ours.
 */
export function appendJournal(file: string, line: ReleaseLine): void {
  const json = JSON.stringify(line);
  if (json.includes('\n')) throw new Error('journal line must not contain a newline');
  let prefix = '';
  try {
    const st = fs.statSync(file);
    if (st.size > 0) {
      const fd = fs.openSync(file, 'r');
      try {
        const b = Buffer.alloc(1);
        fs.readSync(fd, b, 0, 1, st.size - 1);
        if (b[0] !== 0x0a) prefix = '\n';
      } finally {
        fs.closeSync(fd);
      }
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o640);
  try {
    fs.writeSync(fd, prefix + json + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Release id: sortable UTC timestamp plus the short sha (or the kind), e.g. 20250101T120000Z-1a2b3c4d5e6f. */
export function newReleaseId(now: Date, label: string, existing: Iterable<string> = []): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const base = `${ts}-${label.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 24) || 'release'}`;
  const taken = new Set(existing);
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}.${i}`)) return `${base}.${i}`;
}

export const isSuccess = (r: ReleaseLine) => r.result === 'ok';

/** The release whose image should be live now: the newest successful rollout, rollback or recovery. */
export function currentRelease(releases: Release[]): Release | undefined {
  for (let i = releases.length - 1; i >= 0; i--) if (isSuccess(releases[i]) && releases[i].appTag) return releases[i];
  return undefined;
}

/** Releases that started but never wrote a final line (the process died: kill -9, power loss). */
export function unfinishedReleases(releases: Release[]): Release[] {
  return releases.filter((r) => r.result === 'in-progress');
}

/**
 * Default rollback target: the newest successful release before the current one that runs a
 * different image. Rolling back twice therefore toggles between the last two images (like `cd -`).
 */
export function previousSuccessful(releases: Release[]): Release | undefined {
  const cur = currentRelease(releases);
  if (!cur) return undefined;
  const idx = releases.indexOf(cur);
  for (let i = idx - 1; i >= 0; i--) {
    const r = releases[i];
    if (isSuccess(r) && r.appTag && r.appTag !== cur.appTag) return r;
  }
  return undefined;
}

export class ResolveError extends Error {
  candidates: string[];
  constructor(message: string, candidates: string[] = []) {
    super(message);
    this.name = 'ResolveError';
    this.candidates = candidates;
  }
}

/**
 * Resolve `--to <release|sha|tag>`: exact release id, then a unique release-id prefix, then an
 * app tag, then a git sha prefix (at least 4 hex chars). Only successful releases are targets;
 * among several matches with the same image the newest wins.
 */
export function resolveTarget(releases: Release[], to: string): Release {
  const want = to.trim();
  if (!want) throw new ResolveError('empty --to value');
  const ok = releases.filter((r) => isSuccess(r) && r.appTag);
  const pick = (matches: Release[], how: string): Release | undefined => {
    if (matches.length === 0) return undefined;
    const tags = new Set(matches.map((m) => m.appTag));
    if (tags.size > 1) {
      throw new ResolveError(
        `"${want}" is ambiguous (${how}): it matches ${matches.length} releases with different images`,
        matches.map((m) => `${m.id} (${m.appTag})`),
      );
    }
    return matches[matches.length - 1];
  };
  const exact = releases.find((r) => r.id === want);
  if (exact) {
    if (!isSuccess(exact) || !exact.appTag) {
      throw new ResolveError(`release ${want} ended "${exact.result}", not "ok": it cannot be a rollback target`);
    }
    return exact;
  }
  const found =
    pick(ok.filter((r) => r.id.startsWith(want)), 'release id prefix') ??
    pick(ok.filter((r) => r.appTag === want), 'app tag') ??
    (/^[0-9a-f]{4,40}$/i.test(want)
      ? pick(ok.filter((r) => (r.gitSha ?? '').toLowerCase().startsWith(want.toLowerCase())), 'git sha prefix')
      : undefined);
  if (found) return found;
  const failed = releases.filter((r) => !isSuccess(r) && (r.id.startsWith(want) || r.appTag === want || (r.gitSha ?? '').startsWith(want)));
  if (failed.length) {
    throw new ResolveError(`"${want}" only matches releases that did not succeed: ${failed.map((r) => `${r.id} (${r.result})`).join(', ')}`);
  }
  throw new ResolveError(`no successful release matches "${want}" (tried release id, app tag and git sha)`,
    ok.slice(-5).map((r) => `${r.id} (${r.appTag})`));
}

/** Backup ids that journal lines still point to (backup retention must keep them). */
export function referencedBackupIds(releases: Release[]): Set<string> {
  return new Set(releases.map((r) => r.backupId).filter((b): b is string => typeof b === 'string' && b.length > 0));
}

/** Rows for `rollback --list` (newest first). */
export function releaseRows(releases: Release[], now: Date = new Date()) {
  const cur = currentRelease(releases);
  return [...releases].reverse().map((r) => ({
    current: cur && r.id === cur.id ? '*' : '',
    id: r.id,
    kind: r.kind ?? '',
    result: r.result ?? '',
    appTag: r.appTag ?? '',
    started: r.startedAt ?? '',
    age: r.startedAt ? formatAge(now.getTime() - Date.parse(r.startedAt)) : '',
    duration: r.startedAt && r.endedAt ? `${((Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000).toFixed(1)}s` : '',
    backupId: r.backupId ?? '',
    operator: r.operator ?? '',
    reason: r.reason ?? '',
  }));
}


/**
 * The backup that holds the data as it was while `target` was live: the pre-deploy backup of the
 * first release deployed over it (taken right before the target was replaced, so its schema is the
 * target's). Null when no later release took one.
 */
export function backupWhileLive(releases: Release[], target: Release): { backupId: string; release: Release } | null {
  const i = releases.indexOf(target);
  for (let j = i + 1; j < releases.length; j++) {
    const r = releases[j];
    if (r.kind === 'rollout' && r.backupId && (r.previousAppTag === target.appTag || r.previousRelease === target.id)) {
      return { backupId: r.backupId, release: r };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// bound: the journal grows by a few lines per operation; past JOURNAL_COMPACT_LINES it is rewritten
// as one folded line per release, the newest JOURNAL_KEEP_RELEASES and every unfinished one. The
// file it replaces is kept aside whole as releases.jsonl.1 (one generation: the bound is two files).

export const JOURNAL_COMPACT_LINES = 5000;
export const JOURNAL_KEEP_RELEASES = 500;

/** Pure: the compacted journal text, or null when it is short enough. */
export function compactedJournal(text: string, o: { maxLines?: number; keep?: number } = {}): string | null {
  const lines = text.split('\n').filter((l) => l.trim()).length;
  if (lines <= (o.maxLines ?? JOURNAL_COMPACT_LINES)) return null;
  const { releases } = parseJournal(text);
  const keep = o.keep ?? JOURNAL_KEEP_RELEASES;
  const cut = Math.max(0, releases.length - keep);
  const kept = releases.filter((r, i) => i >= cut || r.result === 'in-progress');
  return kept.map(({ lines: _n, ...line }) => JSON.stringify(line)).join('\n') + '\n';
}

/** Compact the journal in place when it is long (the caller holds the operation lock); returns the aside file. */
export function compactJournal(file: string, o: { maxLines?: number; keep?: number } = {}): string | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const next = compactedJournal(text, o);
  if (next === null) return null;
  const aside = `${file}.1`;
  const write = (to: string, data: string) => writeTextAtomic(to, data, { fileMode: 0o640, dirMode: 0o755 });
  // the whole old file first (each step is a rename: a crash leaves either the old or the new journal)
  write(aside, text);
  write(file, next);
  return aside;
}
