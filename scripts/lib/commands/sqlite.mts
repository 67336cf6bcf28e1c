// The sqlite3 command-line shell as data: db.mts runs it on the host as the database file's owner
// (the app's uid), so any -wal/-shm file it creates is the app's, never root's.
export interface SqliteCliOptions {
  db: string;
  /** open read-only (-readonly): nothing can be written, whatever the SQL says */
  readonly: boolean;
  /** wait this long for the app's write lock instead of failing with "database is locked" */
  busyTimeoutMs: number;
  /** output mode for a query: json (one array), box (a table for a terminal), or sqlite3's default list */
  mode?: 'json' | 'box' | 'list';
  /** one statement (or several, separated by ;); none opens the interactive shell */
  sql?: string;
}

export function sqliteArgs(o: SqliteCliOptions): string[] {
  if (!Number.isInteger(o.busyTimeoutMs) || o.busyTimeoutMs < 0) throw new Error(`sqliteArgs: bad busy timeout ${o.busyTimeoutMs}`);
  // sqlite3 reads every argument that starts with "-" as an option, wherever it is (3.40 has no
  // `--`): the database path is absolute, and SQL starting with "-" (a `-- comment`) gets a space
  if (!o.db.startsWith('/')) throw new Error(`sqliteArgs: the database path must be absolute, got ${o.db}`);
  return [
    'sqlite3',
    ...(o.readonly ? ['-readonly'] : []),
    ...(o.mode && o.mode !== 'list' ? [`-${o.mode}`] : []),
    '-bail',
    '-cmd',
    `.timeout ${o.busyTimeoutMs}`,
    o.db,
    ...(o.sql !== undefined ? [o.sql.startsWith('-') ? ` ${o.sql}` : o.sql] : []),
  ];
}

/** An integer literal for SQL (update ids): digits only, so nothing else can reach the statement. */
export function sqlInteger(v: number): string {
  if (!Number.isSafeInteger(v)) throw new Error(`not an integer: ${v}`);
  return String(v);
}

export const DEAD_LETTERS_TABLE = 'dead_letters';

/** SQL for the dead letters db.mts lists and clears; `ids` null = all */
export function deadLetterSql(action: 'list' | 'count' | 'delete', ids: number[] | null = null): string {
  const where = ids ? ` WHERE update_id IN (${ids.map(sqlInteger).join(', ')})` : '';
  if (action === 'list') return `SELECT * FROM ${DEAD_LETTERS_TABLE}${where} ORDER BY rowid DESC`; // newest first, whatever columns the app's table has
  if (action === 'count') return `SELECT count(*) AS n FROM ${DEAD_LETTERS_TABLE}${where}`;
  return `DELETE FROM ${DEAD_LETTERS_TABLE}${where}; SELECT changes() AS deleted`;
}
