// Backup manifests (STATE_DIR/backups/<id>/manifest.json) and the listing of backups.
// A directory is a backup only when its manifest says verified; temporary directories of a
// running or interrupted backup start with "." and are never listed.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { StateLayout } from '../config/state.mts';

export const MANIFEST_FORMAT = 'lazyflow-backup/1';
export const MANIFEST_FILE = 'manifest.json';
export const BACKUP_REASONS = ['cron', 'pre-deploy', 'pre-restore', 'manual'] as const;
export type BackupReason = (typeof BACKUP_REASONS)[number];

export interface UploadEntry {
  path: string;
  size: number;
  sha256: string;
  mtimeMs: number;
  mode: number;
}

export interface BackupManifest {
  format: string;
  id: string;
  /** when the database snapshot was taken */
  createdAt: string;
  finishedAt: string;
  durationMs: number;
  reason: BackupReason;
  host: string;
  app: { image: string | null; tag: string | null; schemaVersion: number };
  toolkit: { version: string; gitSha: string | null };
  database: {
    file: string;
    compression: 'none' | 'gzip';
    /** of the stored file */
    sha256: string;
    bytes: number;
    /** of the database itself (equal to the above without compression) */
    rawSha256: string;
    rawBytes: number;
    pageSize: number;
    pageCount: number;
    userVersion: number;
    integrity: string;
    rowCounts: Record<string, number>;
    snapshotMethod: string;
    snapshotMs: number;
  };
  uploads: {
    dir: string;
    files: number;
    bytes: number;
    /** hard-linked from the previous backup (unchanged files) */
    linked: number;
    copied: number;
    /** referenced by the database snapshot but absent from STATE_DIR/uploads */
    missing: string[];
    entries: UploadEntry[];
  };
  verified: boolean;
}

export interface BackupEntry {
  id: string;
  dir: string;
  manifest: BackupManifest;
  createdAt: Date;
  /** bytes this backup references (database + uploads); hard-linked uploads are shared on disk */
  sizeBytes: number;
  verified: boolean;
  problems: string[];
}

export const ID_RE = /^\d{8}T\d{6}Z(-[a-z0-9-]+)?$/;

export function makeBackupId(at: Date, reason: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${reason}`;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

export function readManifest(dir: string): BackupManifest {
  const m = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as BackupManifest;
  if (m.format !== MANIFEST_FORMAT) throw new Error(`unknown manifest format ${JSON.stringify(m.format)}`);
  if (!m.id || !m.createdAt || !m.database?.file) throw new Error('manifest is incomplete');
  return m;
}

/** quick structural check (presence and sizes); the full check (checksums, integrity) is restore's */
export function quickCheck(dir: string, m: BackupManifest): string[] {
  const problems: string[] = [];
  if (!m.verified) problems.push('manifest not marked verified');
  const db = join(dir, m.database.file);
  if (!existsSync(db)) problems.push(`${m.database.file} missing`);
  else if (statSync(db).size !== m.database.bytes) problems.push(`${m.database.file} has ${statSync(db).size} bytes, manifest says ${m.database.bytes}`);
  let missing = 0;
  for (const e of m.uploads.entries) {
    const p = join(dir, m.uploads.dir, e.path);
    if (!existsSync(p) || statSync(p).size !== e.size) missing++;
  }
  if (missing) problems.push(`${missing} upload file(s) missing or of the wrong size`);
  return problems;
}

export interface ListResult {
  backups: BackupEntry[];
  /** directories under backups/ that are not valid backups */
  ignored: { name: string; why: string }[];
}

export function listBackups(layout: Pick<StateLayout, 'backups'>): ListResult {
  const backups: BackupEntry[] = [];
  const ignored: { name: string; why: string }[] = [];
  if (!existsSync(layout.backups)) return { backups, ignored };
  for (const ent of readdirSync(layout.backups, { withFileTypes: true })) {
    if (ent.name.startsWith('.')) continue; // in progress, interrupted, or being deleted
    if (!ent.isDirectory()) continue;
    const dir = join(layout.backups, ent.name);
    let m: BackupManifest;
    try {
      m = readManifest(dir);
    } catch (err) {
      ignored.push({ name: ent.name, why: `no valid ${MANIFEST_FILE}: ${(err as Error).message}` });
      continue;
    }
    if (m.id !== ent.name) {
      ignored.push({ name: ent.name, why: `manifest id ${m.id} does not match the directory name` });
      continue;
    }
    const problems = quickCheck(dir, m);
    backups.push({
      id: m.id,
      dir,
      manifest: m,
      createdAt: new Date(m.createdAt),
      sizeBytes: m.database.bytes + m.uploads.bytes,
      verified: problems.length === 0,
      problems,
    });
  }
  backups.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
  return { backups, ignored };
}
