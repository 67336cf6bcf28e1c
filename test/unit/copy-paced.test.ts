// The paced copy that backups use for the database and its WAL: it copies what the file held when
// the copy began. The app keeps appending to its WAL during a snapshot (it cannot restart it while the
// snapshot reads), and a copy that chased the end of the file would run, and let the WAL grow, for as
// long as the app writes faster than the copy.
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyFilePaced } from '../../scripts/lib/backup/sqlite-snapshot.mts';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('copyFilePaced', () => {
  it('copies the bytes the file had when the copy began, while a writer keeps appending', async () => {
    dir = mkdtempSync(join(tmpdir(), 'copy-paced-'));
    const src = join(dir, 'live.db-wal');
    const start = Buffer.alloc(1 << 20, 7);
    writeFileSync(src, start);
    // appends a chunk every time the copy yields (after each flush), faster than the copy reads
    let appended = 0;
    let writing = true;
    const append = () => {
      if (!writing) return;
      appendFileSync(src, Buffer.alloc(128 << 10, 9));
      appended++;
      setImmediate(append);
    };
    setImmediate(append);
    const copied = await copyFilePaced(src, join(dir, 'copy'), { chunkBytes: 64 << 10, syncEveryBytes: 64 << 10 });
    writing = false;
    expect(appended).toBeGreaterThan(0); // the writer did run during the copy
    expect(copied).toBe(start.length);
    expect(readFileSync(join(dir, 'copy')).equals(start)).toBe(true);
  });

  it('refuses to overwrite an existing target', async () => {
    dir = mkdtempSync(join(tmpdir(), 'copy-paced-'));
    writeFileSync(join(dir, 'a'), 'a');
    writeFileSync(join(dir, 'b'), 'b');
    await expect(copyFilePaced(join(dir, 'a'), join(dir, 'b'))).rejects.toThrow(/EEXIST/);
    expect(readFileSync(join(dir, 'b'), 'utf8')).toBe('b');
  });
});
