// db.mts's and exec.mts's commands as data: the sqlite3 argv (read-only unless told, the busy timeout,
// nothing read as an option by accident), the dead-letter SQL (ids only as digits), compose exec, and
// the retry command an app image declares.
import { describe, expect, it } from 'vitest';
import { deadLetterSql, sqlInteger, sqliteArgs } from '../../scripts/lib/commands/sqlite.mts';
import { execArgs } from '../../scripts/lib/commands/compose.mts';
import { retryCommand, RETRY_LABEL } from '../../scripts/lib/db/dead-letters.mts';

const db = '/srv/lazyflow/data/lazyflow.db';

describe('sqliteArgs', () => {
  it.each([
    [{ db, readonly: true, busyTimeoutMs: 5000 }, ['sqlite3', '-readonly', '-bail', '-cmd', '.timeout 5000', db]],
    [{ db, readonly: true, busyTimeoutMs: 5000, mode: 'json' as const, sql: 'SELECT 1' }, ['sqlite3', '-readonly', '-json', '-bail', '-cmd', '.timeout 5000', db, 'SELECT 1']],
    [{ db, readonly: false, busyTimeoutMs: 0, mode: 'list' as const, sql: 'DELETE FROM t' }, ['sqlite3', '-bail', '-cmd', '.timeout 0', db, 'DELETE FROM t']],
    [{ db, readonly: true, busyTimeoutMs: 10, mode: 'box' as const, sql: '-- a comment\nSELECT 1' }, ['sqlite3', '-readonly', '-box', '-bail', '-cmd', '.timeout 10', db, ' -- a comment\nSELECT 1']],
  ])('%j', (o, want) => expect(sqliteArgs(o)).toEqual(want));

  it.each([
    [{ db: 'data/lazyflow.db', readonly: true, busyTimeoutMs: 1 }, /absolute/],
    [{ db: '-x.db', readonly: true, busyTimeoutMs: 1 }, /absolute/],
    [{ db, readonly: true, busyTimeoutMs: -1 }, /busy timeout/],
    [{ db, readonly: true, busyTimeoutMs: 1.5 }, /busy timeout/],
  ])('refuses %j', (o, err) => expect(() => sqliteArgs(o)).toThrow(err));
});

describe('dead-letter SQL', () => {
  it.each([
    [['list', null], 'SELECT * FROM dead_letters ORDER BY rowid DESC'],
    [['list', [5]], 'SELECT * FROM dead_letters WHERE update_id IN (5) ORDER BY rowid DESC'],
    [['count', null], 'SELECT count(*) AS n FROM dead_letters'],
    [['delete', [1, 2]], 'DELETE FROM dead_letters WHERE update_id IN (1, 2); SELECT changes() AS deleted'],
    [['delete', null], 'DELETE FROM dead_letters; SELECT changes() AS deleted'],
  ] as const)('%j', ([action, ids], want) => expect(deadLetterSql(action, ids ? [...ids] : null)).toBe(want));
  it('only integers reach the statement', () => {
    expect(() => sqlInteger(1.5)).toThrow();
    expect(() => sqlInteger(Number.NaN)).toThrow();
    expect(() => deadLetterSql('delete', [2 ** 60])).toThrow();
  });
});

describe('exec and retry commands', () => {
  const ctx = { projectDir: '/p', envFile: '/p/.env.prod', project: 'lazyflow' };
  const base = ['compose', '--project-directory', '/p', '--env-file', '/p/.env.prod', '-p', 'lazyflow'];
  it.each([
    [[['sh'], {}], [...base, 'exec', '-T', 'app', 'sh']],
    [[['sh'], { tty: true }], [...base, 'exec', 'app', 'sh']],
    [[['bun', 'src/retry-dead-letter.ts', '42'], { service: 'app' }], [...base, 'exec', '-T', 'app', 'bun', 'src/retry-dead-letter.ts', '42']],
  ] as const)('%j', ([cmd, o], want) => expect(execArgs(ctx, [...cmd], o)).toEqual(want));
  it('an empty command is a bug', () => expect(() => execArgs(ctx, [])).toThrow());

  it.each([
    [{ [RETRY_LABEL]: 'bun src/retry-dead-letter.ts' }, ['bun', 'src/retry-dead-letter.ts']],
    [{ [RETRY_LABEL]: '  node  dist/retry.js ' }, ['node', 'dist/retry.js']],
    [{ [RETRY_LABEL]: '' }, null],
    [{}, null],
    [undefined, null],
  ])('the retry label %j', (labels, want) => expect(retryCommand(labels)).toEqual(want));
});
