// Small JSON records the watch and status read without asking restic or Docker: the newest
// offsite upload (STATE_DIR/offsite/last-upload.json) and the last restore drill
// (STATE_DIR/drill/last-drill.json). Written atomically (temp, fsync, rename, fsync of the
// directory), mode 0600. Reading is tolerant: a missing file is null, an unreadable one throws.
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir, fsyncPath } from './fsutil.mts';

export interface UploadRecord {
  /** the newest local backup known to be offsite */
  backupId: string;
  /** when that backup was made (its age is the offsite copy's age) */
  backupCreatedAt: string;
  /** when it was uploaded (or, source "listing", when a listing showed it offsite) */
  at: string;
  snapshotId: string | null;
  source: 'upload' | 'listing';
}

export interface DrillRecord {
  backupId: string;
  at: string;
  ok: boolean;
  /** why it failed: the first failing check, or the error */
  reason?: string;
  from: 'local' | 'offsite';
  ms?: number;
}

export function writeJsonAtomic(file: string, value: unknown, modes: { dirMode?: number; fileMode?: number } = {}): void {
  writeTextAtomic(file, `${JSON.stringify(value, null, 2)}\n`, modes);
}

/** Any text file, atomically: readers see the old file or the new one, never a part (setup's env file). */
export function writeTextAtomic(file: string, text: string, modes: { dirMode?: number; fileMode?: number } = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: modes.dirMode ?? 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  // the mode is set at creation and again after (umask): a secret is never readable by others, not even briefly
  fs.writeFileSync(tmp, text, { mode: modes.fileMode ?? 0o600, flag: 'w' });
  fs.chmodSync(tmp, modes.fileMode ?? 0o600);
  fsyncPath(tmp);
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** null when the file does not exist; throws (with the path) when it is unreadable */
export function readJsonRecord<T>(file: string): T | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); the next run rewrites it`);
  }
}

/** the newer of two upload records, by the backup's creation time (an older upload never replaces a newer copy) */
export function newerUpload(have: UploadRecord | null, cand: UploadRecord): boolean {
  if (!have || !Number.isFinite(Date.parse(have.backupCreatedAt))) return true;
  return Date.parse(cand.backupCreatedAt) >= Date.parse(have.backupCreatedAt);
}
