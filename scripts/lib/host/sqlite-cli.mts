// Running the sqlite3 shell on the host against the live database, as the database file's owner
// (the app's uid): SQLite creates the -wal/-shm files as whoever opens the database, and root-owned
// ones would stop the app from opening it. The toolkit runs as root; the child drops to the owner's
// uid and gid (no supplementary groups) before sqlite3 starts.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { StepError } from '../cli/errors.mts';

export interface DbOwner {
  uid: number;
  gid: number;
}

/** The live database's owner, refused when it is root (then the app could not write it either). */
export function dbOwner(dbFile: string): DbOwner {
  let st: fs.Stats;
  try {
    st = fs.statSync(dbFile);
  } catch {
    throw new StepError(`no database at ${dbFile}`, { step: 'db', hint: 'has the app started once? node scripts/status.mts --config <file>' });
  }
  if (st.uid === 0) {
    throw new StepError(`${dbFile} is owned by root: the app (uid 1000) cannot write it`, {
      step: 'db',
      hint: `sudo chown 1000:1000 ${dbFile}* (RUNBOOK "Incident steps", database problem)`,
    });
  }
  return { uid: st.uid, gid: st.gid };
}

/**
 * Whether `uid` can reach `dir` (search permission on every parent): sqlite3 running as the app's uid
 * opens the database by its full path. Returns the first directory it cannot pass, or null.
 */
export function unreachableFor(dir: string, owner: DbOwner): string | null {
  let d = path.resolve(dir);
  const chain: string[] = [];
  for (;;) {
    chain.unshift(d);
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const p of chain) {
    const st = fs.statSync(p);
    const bits = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
    if ((st.mode & bits) === 0) return p;
  }
  return null;
}

/** The database's owner, once it is sure that owner can reach the file (else a StepError naming the directory). */
export function reachableOwner(dbFile: string): DbOwner {
  const owner = dbOwner(dbFile);
  const blocked = unreachableFor(path.dirname(dbFile), owner);
  if (blocked) throw new StepError(`uid ${owner.uid} (the database's owner) cannot reach ${dbFile}: ${blocked} is not searchable for it`, { step: 'db', hint: `sudo chmod o+x ${blocked}` });
  return owner;
}

export interface SqliteRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** as root, the child takes the owner's ids; run as anyone else, it runs as that user (it can only open what it may) */
const asOwner = (owner: DbOwner) => (process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {});

/** Run sqlite3 (argv from commands/sqlite.mts) and collect its output. */
export function runSqlite(argv: readonly string[], owner: DbOwner): Promise<SqliteRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { ...asOwner(owner), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new StepError('sqlite3 is not installed on this host', { step: 'db', hint: 'sudo apt-get install -y sqlite3' }) : e));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The interactive sqlite3 shell on this terminal; resolves with its exit status. */
export function runSqliteInteractive(argv: readonly string[], owner: DbOwner): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { ...asOwner(owner), stdio: 'inherit' });
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new StepError('sqlite3 is not installed on this host', { step: 'db', hint: 'sudo apt-get install -y sqlite3' }) : e));
    child.on('close', (code) => resolve(code ?? 1));
  });
}
