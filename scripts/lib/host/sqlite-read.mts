// Reading the live SQLite database from the host while the app writes it (smoke, recovery, the
// contract checker, the drill's look at what its app left): read-only, and with the app's uid.
// SQLite opens -wal and -shm by name, creates them, writes -shm and, as root, fchowns them: run as
// root, a -shm the app swapped for a link to a root-owned file would have that file overwritten and
// given to uid 1000. As the app's uid it reaches only what the app can, and the sidecars it creates
// belong to the app without any chown.
import Database from 'better-sqlite3';
import { asAppUser, assertNotLink, blockedForApp, mustDropTo, treeOwner, type AppIdentity } from './app-files.mts';
import { dirname } from 'node:path';

/**
 * better-sqlite3 loads its native addon at the first `new Database()`, from this checkout's
 * node_modules. With the effective uid already the app's, a checkout only root may read (under a 0700
 * directory: /root, a mkdtemp) fails that load with "Cannot find module ...better_sqlite3.node". So the
 * addon is loaded once, as the toolkit's own user, before any switch: an in-memory database, nothing on disk.
 */
let addonLoaded = false;
function loadAddon(): void {
  if (addonLoaded) return;
  new Database(':memory:').close();
  addonLoaded = true;
}

/** Run `f` (synchronous) on the database file `dbFile` of an app tree with the app's uid; links at the database or its sidecars are refused. */
export function openAsApp<T>(dbFile: string, f: () => T, id: AppIdentity = treeOwner(dirname(dbFile))): T {
  loadAddon();
  for (const p of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`]) assertNotLink(p);
  // The app's uid must pass through every directory above (STATE_DIR is 0755 by the RUNBOOK's setup).
  // Where it cannot (a 0700 directory above), the read runs as root after the link checks above:
  // SQLite opens -wal and -shm with O_NOFOLLOW and a read-only connection creates nothing, so what
  // is left is a link swapped in at the database's own name between the check and the open.
  if (mustDropTo(id) && blockedForApp(dbFile, id).length) return f();
  return asAppUser(f, id) as T;
}

/** Opens the live database read-only as the app's uid; `f` must be synchronous. */
export function withDbReadOnly<T>(dbFile: string, f: (db: Database.Database) => T, id: AppIdentity = treeOwner(dirname(dbFile))): T {
  return openAsApp(dbFile, () => {
    const db = new Database(dbFile, { readonly: true, fileMustExist: true, timeout: 5000 });
    try {
      return f(db);
    } finally {
      db.close();
    }
  }, id);
}
