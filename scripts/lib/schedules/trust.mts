// Who may write what a schedule runs as root. A unit or cron line executes node, a script of this
// checkout and reads the env file with full root power: if another user (or a group, or everyone) can
// write any of them, or a directory above them, that user becomes root at the next run. Every
// scheduled run checks that before it does anything (scripts/lib/cli/main.mts, when the unit or cron
// line sets LAZYFLOW_TRUST_CHECK=1) and refuses with exit 2, naming the path.
//
// Pure rules first (table-tested), then the walk over the file system.
import fs from 'node:fs';
import path from 'node:path';

/** the environment variable the units and cron lines set: this run is a schedule's, check trust first */
export const TRUST_CHECK_ENV = 'LAZYFLOW_TRUST_CHECK';

export interface Owned {
  uid: number;
  mode: number;
  isDirectory: boolean;
  isSymbolicLink: boolean;
}

/**
 * Why a non-root user could replace this path's content, or null. `child`: the stat is of a directory
 * above the file, where the sticky bit (1777, /tmp) keeps others from renaming a root-owned entry.
 */
export function untrusted(st: Owned, o: { ancestor: boolean; childOwnedByRoot?: boolean } = { ancestor: false }): string | null {
  if (st.uid !== 0) return `owned by uid ${st.uid}, not root`;
  if (st.isSymbolicLink) return null; // a link's own mode means nothing; its target is checked too
  const w = st.mode & 0o022;
  if (!w) return null;
  if (o.ancestor && st.isDirectory && st.mode & 0o1000 && o.childOwnedByRoot) return null;
  return `writable by ${w & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)})`;
}

export interface TrustProblem {
  path: string;
  why: string;
}

const toOwned = (s: fs.Stats): Owned => ({ uid: s.uid, mode: s.mode, isDirectory: s.isDirectory(), isSymbolicLink: s.isSymbolicLink() });

/** the path, every directory above it, and the same for the target of every symlink on the way */
export function checkPath(p: string, lstat: (p: string) => Owned = (x) => toOwned(fs.lstatSync(x)), realpath: (p: string) => string = fs.realpathSync): TrustProblem[] {
  const problems: TrustProblem[] = [];
  const seen = new Set<string>();
  const visit = (file: string) => {
    const abs = path.resolve(file);
    if (seen.has(abs)) return;
    seen.add(abs);
    let st: Owned;
    try {
      st = lstat(abs);
    } catch {
      return; // a missing file is the job's own error to report
    }
    const why = untrusted(st, { ancestor: false });
    if (why) problems.push({ path: abs, why });
    let child = st;
    for (let dir = path.dirname(abs); ; dir = path.dirname(dir)) {
      let d: Owned;
      try {
        d = lstat(dir);
      } catch {
        break;
      }
      const dwhy = untrusted(d, { ancestor: true, childOwnedByRoot: child.uid === 0 });
      if (dwhy) problems.push({ path: dir, why: `${dwhy}: whoever can write it can replace ${abs}` });
      if (d.isSymbolicLink) visit(realpath(dir));
      child = d;
      if (dir === path.dirname(dir)) break;
    }
    if (st.isSymbolicLink) visit(realpath(abs));
  };
  visit(p);
  return problems;
}

/** every file and directory below dir (not following links), skipping node_modules' insides */
function walk(dir: string, out: string[]) {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory() && e.name !== 'node_modules') walk(p, out);
  }
}

/**
 * What a scheduled run executes or reads with root's power: node, the checkout's scripts (all of them:
 * any one is imported), package.json, node_modules (its top level; its packages come from npm ci as
 * root) and the env file.
 */
export function trustProblems(o: { nodeBin: string; checkout: string; envFile?: string }): TrustProblem[] {
  const paths = [o.nodeBin, path.join(o.checkout, 'package.json'), path.join(o.checkout, 'node_modules'), path.join(o.checkout, 'scripts')];
  walk(path.join(o.checkout, 'scripts'), paths);
  if (o.envFile) paths.push(o.envFile);
  const problems: TrustProblem[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    for (const x of checkPath(p)) {
      if (seen.has(x.path)) continue;
      seen.add(x.path);
      problems.push(x);
    }
  }
  return problems;
}
