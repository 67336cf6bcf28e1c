// The swap of data/ and uploads/ and its reverse must finish correctly from any crash point:
// each is a sequence of renames that a re-run completes without ever losing either state.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSwapRenames, crossDevice, swapBack, swapIn } from '../../scripts/lib/restore/swap.mts';

let root: string;
let staging: string;
let kept: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'swap-'));
  staging = join(root, '.restore-op');
  kept = join(root, 'kept', 'op-pre-restore');
  for (const [dir, tag] of [[root, 'old'], [staging, 'new']] as const) {
    for (const item of ['data', 'uploads']) {
      mkdirSync(join(dir, item), { recursive: true });
      writeFileSync(join(dir, item, 'marker'), tag);
    }
  }
  // the old database's WAL leaves with the old data dir
  writeFileSync(join(root, 'data', 'lazyflow.db-wal'), 'old wal');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const live = (item: string) => readFileSync(join(root, item, 'marker'), 'utf8');

describe('swapIn / swapBack', () => {
  it('swapIn puts the staged state live and keeps the old one aside in the kept dir, without its -wal', () => {
    swapIn({ root }, staging, kept);
    expect([live('data'), live('uploads')]).toEqual(['new', 'new']);
    expect(existsSync(join(root, 'data', 'lazyflow.db-wal'))).toBe(false);
    expect(readFileSync(join(kept, 'data', 'marker'), 'utf8')).toBe('old');
    expect(existsSync(join(kept, 'data', 'lazyflow.db-wal'))).toBe(true);
  });

  it('swapIn is idempotent', () => {
    swapIn({ root }, staging, kept);
    swapIn({ root }, staging, kept);
    expect([live('data'), live('uploads')]).toEqual(['new', 'new']);
    expect(readFileSync(join(kept, 'uploads', 'marker'), 'utf8')).toBe('old');
  });

  for (const crash of ['after data aside', 'after data in', 'after uploads aside']) {
    it(`swapIn completes after a crash ${crash}`, () => {
      mkdirSync(kept, { recursive: true });
      renameSync(join(root, 'data'), join(kept, 'data'));
      if (crash !== 'after data aside') renameSync(join(staging, 'data'), join(root, 'data'));
      if (crash === 'after uploads aside') renameSync(join(root, 'uploads'), join(kept, 'uploads'));
      swapIn({ root }, staging, kept);
      expect([live('data'), live('uploads')]).toEqual(['new', 'new']);
      expect(readFileSync(join(kept, 'data', 'marker'), 'utf8')).toBe('old');
      expect(readFileSync(join(kept, 'uploads', 'marker'), 'utf8')).toBe('old');
    });
  }

  it('swapBack restores the old state from any point, and is idempotent', () => {
    swapIn({ root }, staging, kept);
    swapBack({ root }, staging, kept);
    expect([live('data'), live('uploads')]).toEqual(['old', 'old']);
    swapBack({ root }, staging, kept);
    expect([live('data'), live('uploads')]).toEqual(['old', 'old']);
    // nothing is left kept aside once the old state is live again
    expect(existsSync(kept)).toBe(false);
  });

  it('a live dir in the way of an existing kept copy is parked next to it, never deleted', () => {
    swapIn({ root }, staging, kept);
    mkdirSync(join(staging, 'data'));
    writeFileSync(join(staging, 'data', 'marker'), 'newer');
    swapIn({ root }, staging, kept);
    expect(live('data')).toBe('newer');
    expect(readFileSync(join(kept, 'data', 'marker'), 'utf8')).toBe('old');
    const parked = readdirSync(kept).filter((n) => n.startsWith('data.'));
    expect(parked).toHaveLength(1);
    expect(readFileSync(join(kept, parked[0], 'marker'), 'utf8')).toBe('new');
  });

  it('swapBack after a crash in the middle of swapIn', () => {
    mkdirSync(kept, { recursive: true });
    renameSync(join(root, 'data'), join(kept, 'data'));
    renameSync(join(staging, 'data'), join(root, 'data'));
    swapBack({ root }, staging, kept);
    expect([live('data'), live('uploads')]).toEqual(['old', 'old']);
    expect(readFileSync(join(staging, 'data', 'marker'), 'utf8')).toBe('new');
  });
});

// issue 16: a kept/ (or data/, uploads/) on a filesystem of its own made the rename fail after the app
// had stopped, every minute. The check runs before the stop.

describe('the swap renames within STATE_DIR only: checked before the app stops', () => {
  it('names every path on another filesystem', () => {
    expect(crossDevice(1, [{ path: '/s/data', dev: 1 }, { path: '/s/kept', dev: 7 }, { path: '/s/uploads', dev: 9 }])).toEqual(['/s/kept', '/s/uploads']);
    expect(crossDevice(1, [{ path: '/s/data', dev: 1 }])).toEqual([]);
  });
  it('passes for plain directories of STATE_DIR (kept/<op> not created yet: its nearest existing parent counts)', () => {
    const root = mkdtempSync(join(tmpdir(), 'swapfs-'));
    try {
      for (const d of ['data', 'uploads', '.restore-x/data', '.restore-x/uploads']) mkdirSync(join(root, d), { recursive: true });
      expect(() => assertSwapRenames({ root }, join(root, '.restore-x'), join(root, 'kept', 'x-pre-restore'))).not.toThrow();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  it('refuses when a path is on another filesystem (/dev/shm is a tmpfs of its own), naming it and the fix', () => {
    const root = mkdtempSync(join(tmpdir(), 'swapfs-'));
    const other = mkdtempSync('/dev/shm/swapfs-');
    try {
      mkdirSync(join(root, 'data'));
      expect(() => assertSwapRenames({ root }, join(root, '.restore-x'), join(other, 'kept-x'))).toThrow(/\/dev\/shm\/swapfs-\w+ is not on the filesystem of .*nothing was stopped/);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(other, { recursive: true, force: true });
    }
  });
});

// issue 16: a restore (and the schema revert, which is one) checks the room for its staged copy first
import { STAGING_MARGIN_BYTES, stagingSpace } from '../../scripts/lib/restore/restore.mts';
describe('restore: room for the staged copy, checked before anything is touched', () => {
  it.each([
    { bytes: 1e9, free: 2e9, fits: true },
    { bytes: 1e9, free: 1e9, fits: false }, // no room for the margin
    { bytes: 1e9, free: 1e9 + STAGING_MARGIN_BYTES, fits: true },
    { bytes: 5e9, free: 1e9, fits: false },
    { bytes: 1e9, free: NaN, fits: true }, // statfs unavailable: not refused on a guess
  ])('$bytes bytes with $free free: fits $fits', ({ bytes, free, fits }) => {
    expect(stagingSpace(bytes, free)).toEqual({ fits, needBytes: bytes + STAGING_MARGIN_BYTES });
  });
});
