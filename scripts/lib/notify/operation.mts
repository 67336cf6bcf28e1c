// One notification per operation: an OperationNotice is started where an operation begins (its
// monotonic clock starts there), learns the release and backup as the operation finds them, and
// reports once, where the final outcome is known: ok on return, failed with the one line that
// explains it on a throw. A second report is a no-op, so a caller and a callee cannot both notify;
// handOff() says another process (the detached swap worker) reports from here on. Sending never
// throws (notifyOperation): a channel that is down never fails the operation.
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { UsageError, errorMessage } from '../cli/errors.mts';
import { currentRelease, readJournal } from '../release/journal.mts';
import { notifyOperation, summarize } from './notify.mts';
import { explainingLine, redactEnvSecrets, type OpMessage, type Outcome, type RevertInfo } from './message.mts';

export interface OperationReport {
  outcome: Outcome;
  reason?: string;
  release?: string;
  backup?: string;
  revert?: RevertInfo;
}

export interface NoticeOptions {
  env: Pick<OpsEnv, 'values'> & Partial<Pick<OpsEnv, 'layout'>>;
  log?: Logger;
  /** rollout, rollback, backup, offsite, offsite-check, restore, drill, recovery */
  operation: string;
  release?: string;
  backup?: string;
  /** false: send nothing (--no-notify) */
  enabled?: boolean;
  /** Bot API root as reachable from this host (default TELEGRAM_API_ROOT) */
  apiRoot?: string;
  timeoutMs?: number;
  /** what the operation had already taken in the process that handed it over (its own monotonic clock) */
  elapsedBeforeMs?: number;
}

export class OperationNotice {
  release?: string;
  backup?: string;
  private readonly t0 = performance.now();
  private settled = false;
  private readonly o: NoticeOptions;

  constructor(o: NoticeOptions) {
    this.o = o;
    this.release = o.release;
    this.backup = o.backup;
  }

  /** since the operation began (across a handover), monotonic */
  elapsedMs(): number {
    return Math.round((this.o.elapsedBeforeMs ?? 0) + performance.now() - this.t0);
  }

  /** Another process reports the outcome from here on: this notice never sends. */
  handOff(): void {
    this.settled = true;
  }

  get done(): boolean {
    return this.settled;
  }

  /** Sends the one notification (only the first call does); returns the per-channel summary ('' when none). */
  async report(r: OperationReport): Promise<string> {
    if (this.settled) return '';
    this.settled = true;
    if (this.o.enabled === false) return '';
    const values = this.o.env.values;
    const m: OpMessage = {
      operation: this.o.operation,
      outcome: r.outcome,
      release: r.release ?? this.release,
      backup: r.backup ?? this.backup,
      durationMs: this.elapsedMs(),
      reason: r.reason ? redactEnvSecrets(explainingLine(r.reason), values) : undefined,
      revert: r.revert ? { ...r.revert, error: r.revert.error ? redactEnvSecrets(explainingLine(r.revert.error), values) : undefined } : undefined,
    };
    if (m.revert && m.revert.error === undefined) delete m.revert.error;
    const sent = summarize(await notifyOperation(this.o.env, m, { log: this.o.log, apiRoot: this.o.apiRoot, timeoutMs: this.o.timeoutMs }));
    if (sent) this.o.log?.info(`notify: ${sent}`);
    return sent;
  }

  /** The operation threw: failed with its message. A UsageError (nothing was started) sends nothing. */
  async fail(err: unknown): Promise<string> {
    if (err instanceof UsageError) {
      this.settled = true;
      return '';
    }
    return this.report({ outcome: 'failed', reason: errorMessage(err) });
  }
}

/**
 * Runs an operation and notifies once: `judge` maps its result to the report (null: nothing to tell,
 * e.g. a dry run or a recovery with nothing to do); a throw is reported as failed and rethrown.
 */
export async function withNotice<T>(o: NoticeOptions, fn: (n: OperationNotice) => Promise<T>, judge: (r: T) => OperationReport | null): Promise<T> {
  const n = new OperationNotice(o);
  let r: T;
  try {
    r = await fn(n);
  } catch (err) {
    await n.fail(err);
    throw err;
  }
  const rep = judge(r);
  if (rep) await n.report(rep);
  else n.handOff();
  return r;
}

/** "appTag (release id)" of what runs now per the journal; undefined when none (or unreadable). */
export function currentReleaseLabel(env: Partial<Pick<OpsEnv, 'layout'>>): string | undefined {
  try {
    if (!env.layout) return undefined;
    const r = currentRelease(readJournal(env.layout.releases).releases);
    return r ? releaseLabel(r.appTag, r.id) : undefined;
  } catch {
    return undefined;
  }
}

export function releaseLabel(appTag: string | null | undefined, id: string | null | undefined): string | undefined {
  if (appTag && id) return `${appTag} (${id})`;
  return appTag || id || undefined;
}
