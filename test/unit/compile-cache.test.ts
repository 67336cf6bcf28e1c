import { describe, it, expect } from 'vitest';
import { trustedCacheDir } from '../../scripts/lib/cli/compile-cache.mts';

const st = (o: { dir?: boolean; link?: boolean; uid?: number; mode?: number }) => ({
  isDirectory: () => o.dir ?? true, isSymbolicLink: () => o.link ?? false, uid: o.uid ?? 0, mode: 0o40000 | (o.mode ?? 0o700),
});

describe('compile cache: only a directory no one else can write feeds code to root', () => {
  it.each<[string, ReturnType<typeof st> | null, number | undefined, boolean]>([
    ['ours, 0700', st({}), 0, true],
    ['ours, 0755 (others read, cannot write)', st({ mode: 0o755 }), 0, true],
    ['group-writable', st({ mode: 0o770 }), 0, false],
    ['world-writable', st({ mode: 0o777 }), 0, false],
    ["another user's", st({ uid: 1000 }), 0, false],
    ['a symbolic link', st({ link: true }), 0, false],
    ['a file', st({ dir: false }), 0, false],
    ['missing', null, 0, false],
    ['no uid on this platform: the mode decides', st({ uid: 1000 }), undefined, true],
  ])('%s', (_what, s, uid, ok) => {
    expect(trustedCacheDir(s, uid)).toBe(ok);
  });
});
