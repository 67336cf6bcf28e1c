// Reading the live SQLite database from the host while the app writes it (smoke, recovery, the
// contract checker): read-only, and any -wal/-shm file SQLite creates as root goes back to the file's owner.
import fs from 'node:fs';
import Database from 'better-sqlite3';

/** Opens the live database read-only; files SQLite creates as root are handed back to the app user. */
export function withDbReadOnly<T>(dbFile: string, f: (db: Database.Database) => T): T {
  const side = ['-wal', '-shm'].map((s) => dbFile + s);
  const existed = side.map((p) => fs.existsSync(p));
  const db = new Database(dbFile, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    return f(db);
  } finally {
    db.close();
    side.forEach((p, i) => {
      if (!existed[i] && fs.existsSync(p)) {
        try {
          const st = fs.statSync(dbFile);
          fs.chownSync(p, st.uid, st.gid);
        } catch {
          /* ignore */
        }
      }
    });
  }
}
