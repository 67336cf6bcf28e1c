// The swap of data/ and uploads/ and its reverse must finish correctly from any crash point:
// each is a sequence of renames that a re-run completes without ever losing either state.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swapBack, swapIn } from '../../scripts/lib/restore/swap.mts';

let root: string;
let staging: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'swap-'));
  staging = join(root, '.restore-op');
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
  it('swapIn puts the staged state live and keeps the old one aside, without its -wal', () => {
    swapIn({ root }, staging);
    expect([live('data'), live('uploads')]).toEqual(['new', 'new']);
    expect(existsSync(join(root, 'data', 'lazyflow.db-wal'))).toBe(false);
    expect(readFileSync(join(staging, 'old-data', 'marker'), 'utf8')).toBe('old');
    expect(existsSync(join(staging, 'old-data', 'lazyflow.db-wal'))).toBe(true);
  });

  it('swapIn is idempotent', () => {
    swapIn({ root }, staging);
    swapIn({ root }, staging);
    expect([live('data'), live('uploads')]).toEqual(['new', 'new']);
    expect(readFileSync(join(staging, 'old-uploads', 'marker'), 'utf8')).toBe('old');
  });

  for (const crash of ['after data aside', 'after data in', 'after uploads aside']) {
    it(`swapIn completes after a crash ${crash}`, () => {
      renameSync(join(root, 'data'), join(staging, 'old-data'));
      if (crash !== 'after data aside') renameSync(join(staging, 'data'), join(root, 'data'));
      if (crash === 'after uploads aside') renameSync(join(root, 'uploads'), join(staging, 'old-uploads'));
      swapIn({ root }, staging);
      expect([live('data'), live('uploads')]).toEqual(['new', 'new']);
      expect(readFileSync(join(staging, 'old-data', 'marker'), 'utf8')).toBe('old');
      expect(readFileSync(join(staging, 'old-uploads', 'marker'), 'utf8')).toBe('old');
    });
  }

  it('swapBack restores the old state from any point, and is idempotent', () => {
    swapIn({ root }, staging);
    swapBack({ root }, staging);
    expect([live('data'), live('uploads')]).toEqual(['old', 'old']);
    swapBack({ root }, staging);
    expect([live('data'), live('uploads')]).toEqual(['old', 'old']);
  });

  it('swapBack after a crash in the middle of swapIn', () => {
    renameSync(join(root, 'data'), join(staging, 'old-data'));
    renameSync(join(staging, 'data'), join(root, 'data'));
    swapBack({ root }, staging);
    expect([live('data'), live('uploads')]).toEqual(['old', 'old']);
    expect(readFileSync(join(staging, 'data', 'marker'), 'utf8')).toBe('new');
  });
});
