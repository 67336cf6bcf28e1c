// Node's compile cache for the toolkit's own modules: a rollout starts two Node processes (the
// operator's and the critical section's detached worker), and each strips the types of ~150 modules
// before it runs a line; with the cache, a later start reads the result instead (measured in
// BENCHMARKS.md, "The contract gate's cost"). Node checks every entry against its source's hash, so an
// updated checkout is compiled again. The cache is code root runs: it lives in the toolkit's own
// node_modules (as writable as the code itself) and is used only when it belongs to this user and no
// one else may write it.
import fs from 'node:fs';
import path from 'node:path';
import module from 'node:module';

/** <toolkit>/node_modules/.cache/lazyflow-node-compile */
export const COMPILE_CACHE_DIR = path.resolve(import.meta.dirname, '..', '..', '..', 'node_modules', '.cache', 'lazyflow-node-compile');

/** Pure: may root (or whoever runs this) load compiled code from a directory with this stat? */
export function trustedCacheDir(st: { isDirectory(): boolean; isSymbolicLink(): boolean; uid: number; mode: number } | null, uid: number | undefined): boolean {
  if (!st || st.isSymbolicLink() || !st.isDirectory()) return false;
  if (uid !== undefined && st.uid !== uid) return false;
  return (st.mode & 0o022) === 0;
}

/** The cache directory, created 0700 when missing; null when it is not safe to use (or cannot be made). */
export function compileCacheDir(dir = COMPILE_CACHE_DIR): string | null {
  if (process.env.NODE_DISABLE_COMPILE_CACHE) return null;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return trustedCacheDir(fs.lstatSync(dir), process.getuid?.()) ? dir : null;
  } catch {
    return null;
  }
}

/** Turn the cache on for the modules this process imports from now on (a script's dynamic imports). */
export function enableCompileCache(): void {
  const dir = compileCacheDir();
  if (dir) module.enableCompileCache?.(dir);
}
