// Dead letters (Telegram updates the app gave up on, the app's dead_letters table): listed and
// cleared with sqlite3 as the app's uid; retried BY THE APP, in its running container, with the
// command its image declares (label lazyflow.dead-letter-retry), so the app's own exactly-once commit
// decides, never the toolkit.
import type { OpsEnv } from '../config/env.mts';
import { StepError } from '../cli/errors.mts';
import { composeCtx, composeEnv, execArgs } from '../commands/compose.mts';
import { deadLetterSql, sqliteArgs, DEAD_LETTERS_TABLE } from '../commands/sqlite.mts';
import { appContainers } from '../docker/app-container.mts';
import { docker } from '../docker/run.mts';
import { reachableOwner, runSqlite } from '../host/sqlite-cli.mts';

export const RETRY_LABEL = 'lazyflow.dead-letter-retry';

export type DeadLetter = Record<string, unknown> & { update_id: number };

/** one query, read-only unless told, JSON rows back */
export async function queryJson(env: OpsEnv, sql: string, o: { write?: boolean; busyTimeoutMs: number }): Promise<Record<string, unknown>[]> {
  const db = env.layout.db;
  const r = await runSqlite(sqliteArgs({ db, readonly: !o.write, busyTimeoutMs: o.busyTimeoutMs, mode: 'json', sql }), reachableOwner(db));
  if (r.code !== 0) throw new StepError(`sqlite3 failed on ${db}: ${r.stderr.trim() || `exit ${r.code}`}`, { step: 'db' });
  // sqlite3 -json prints one array per statement that returns rows, nothing for none
  const out: Record<string, unknown>[] = [];
  for (const chunk of r.stdout.split(/\n(?=\[)/)) if (chunk.trim()) out.push(...(JSON.parse(chunk) as Record<string, unknown>[]));
  return out;
}

export async function hasDeadLetterTable(env: OpsEnv, busyTimeoutMs: number): Promise<boolean> {
  const rows = await queryJson(env, `SELECT name FROM sqlite_master WHERE type = 'table' AND name = '${DEAD_LETTERS_TABLE}'`, { busyTimeoutMs });
  return rows.length > 0;
}

export async function listDeadLetters(env: OpsEnv, busyTimeoutMs: number, ids: number[] | null = null): Promise<DeadLetter[]> {
  if (!(await hasDeadLetterTable(env, busyTimeoutMs))) {
    throw new StepError(`the app's database has no ${DEAD_LETTERS_TABLE} table (${env.layout.db})`, { step: 'db', hint: 'this app keeps no dead letters; nothing to list, retry or clear' });
  }
  return (await queryJson(env, deadLetterSql('list', ids), { busyTimeoutMs })) as DeadLetter[];
}

/** delete dead letters (the caller took a verified backup first); returns how many went */
export async function clearDeadLetters(env: OpsEnv, ids: number[] | null, busyTimeoutMs: number): Promise<number> {
  const rows = await queryJson(env, deadLetterSql('delete', ids), { write: true, busyTimeoutMs });
  return Number(rows.at(-1)?.deleted ?? 0);
}

export interface RetryResult {
  update_id: number;
  /** processed | failed | not_found | already_processed | no_update_kept | schema | usage | ... as the app says */
  result: string;
  error?: string;
  /** the app's exit status */
  code: number;
  /** the app's own log lines (stderr) */
  appLog: string;
}

/** The retry command the running app image declares, as an argv; null when it declares none. */
export function retryCommand(labels: Record<string, string> | undefined): string[] | null {
  const v = labels?.[RETRY_LABEL]?.trim();
  return v ? v.split(/\s+/) : null;
}

/** Have the running app process one dead letter again (its retry command, in its container). */
export async function retryDeadLetter(env: OpsEnv, updateId: number): Promise<RetryResult> {
  const running = (await appContainers(env, false)).find((c) => c.State.Running);
  if (!running) throw new StepError(`no running app container in project ${env.project}: the app must process the retry`, { step: 'db', hint: 'start it (rollout), then retry' });
  const cmd = retryCommand(running.Config.Labels);
  if (!cmd) {
    throw new StepError(`the running app image (${running.Config.Image}) declares no dead-letter retry command (label ${RETRY_LABEL})`, {
      step: 'db',
      hint: `add LABEL ${RETRY_LABEL}="<command that takes an update_id>" to the app's Dockerfile (RUNBOOK "Dead letters")`,
    });
  }
  const r = await docker(execArgs(composeCtx(env), [...cmd, String(updateId)]), { nothrow: true, env: composeEnv(env.values) });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  let parsed: { result?: unknown; error?: unknown } = {};
  try {
    parsed = JSON.parse(last) as typeof parsed;
  } catch {
    /* not the JSON line: reported below */
  }
  const result = typeof parsed.result === 'string' ? parsed.result : 'unknown';
  const error = typeof parsed.error === 'string' ? parsed.error : result === 'unknown' ? (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.exitCode}`) : undefined;
  return { update_id: updateId, result, ...(error ? { error } : {}), code: r.exitCode ?? 1, appLog: r.stderr };
}
