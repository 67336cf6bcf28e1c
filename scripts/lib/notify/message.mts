// What the operator is told: one message model for every operation (rollout, rollback, revert,
// backup, offsite, restore, drill, recovery) and for the watch's alerts, rendered once as a short
// text (Telegram, chat webhooks) and once as JSON (any webhook receiver). Pure: no I/O here.
import { hostname } from 'node:os';
import { formatDuration } from '../cli/log.mts';

export type Outcome = 'ok' | 'failed';

/** A watch alert: a problem started, is still there (reminder), or ended. */
export interface AlertInfo {
  /** stable name of the problem, e.g. app-down, cert-expiry, backup-stale */
  problem: string;
  state: 'started' | 'reminder' | 'resolved';
  /** when the problem started (ISO) */
  since: string;
}

/** What an automatic revert after a failed rollout or rollback did (part of that one message). */
export interface RevertInfo {
  ok: boolean;
  /** the app tag it went back to (null: nothing to go back to, the failed app is stopped) */
  to: string | null;
  /** the pre-deploy backup was restored (the failed release had moved the schema) */
  restoredDb: boolean;
  /** why going back failed */
  error?: string;
}

export interface OpMessage {
  /** rollout, rollback, revert, backup, offsite, restore, drill, recovery, watch, ... */
  operation: string;
  outcome: Outcome;
  /** release id or app tag the operation concerned */
  release?: string;
  durationMs?: number;
  /** the backup the operation made, restored or drilled */
  backup?: string;
  /** the one line that explains a failure (or what the alert is about) */
  reason?: string;
  /** a failed rollout or rollback was reverted automatically (or tried to be) */
  revert?: RevertInfo;
  /** default: this machine's host name */
  host?: string;
  /** ISO time of the event (default: now) */
  at?: string;
  /** free text used as the whole summary line instead of the generated one (watch --test-alert) */
  text?: string;
  alert?: AlertInfo;
}

/** The JSON body a webhook receives (documented in RUNBOOK "Alerts, schedules and status"). */
export interface WebhookPayload {
  /** one-line human summary: Slack reads `text`, Discord `content`, ntfy shows the body */
  text: string;
  content: string;
  source: 'lazyflow';
  operation: string;
  outcome: Outcome;
  release: string | null;
  backup: string | null;
  duration_ms: number | null;
  reason: string | null;
  revert: RevertInfo | null;
  host: string;
  at: string;
  alert: AlertInfo | null;
}

// long enough for the longest one-line errors (an offsite upload that timed out: what failed, the
// backend's error, and what it means for the local backup, at the end); a chat message holds 4096
const MAX_REASON = 500;

function oneLine(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > MAX_REASON ? `${l.slice(0, MAX_REASON - 1)}…` : l || undefined;
}

/**
 * The one line of a (possibly multi-line) error that explains it: the first line, unless it only
 * introduces what follows ("docker build failed:"), then that line and the last one (where build
 * tools and compose put the cause).
 */
export function explainingLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length <= 1) return lines[0] ?? '';
  return lines[0].endsWith(':') ? `${lines[0]} ${lines.at(-1)}` : lines[0];
}

/** env keys whose values are secrets: never in a notification, even if an error message carried one */
const SECRET_KEY = /TOKEN|SECRET|PASSWORD|KEY_ID|_KEY$|WEBHOOK_URL|HEARTBEAT_URL/;

/** Replaces every secret value of the env file found in a text with <redacted>. */
export function redactEnvSecrets(s: string, values: Record<string, string | undefined>): string {
  let out = s;
  const secrets = Object.entries(values)
    .filter(([k, v]) => SECRET_KEY.test(k) && v && v.trim().length >= 6)
    .map(([, v]) => v!.trim())
    .sort((a, b) => b.length - a.length);
  for (const v of secrets) out = out.split(v).join('<redacted>');
  return out;
}

/** The message with every secret value of the env file taken out of its free text (reason, text, revert error): every alert and notification passes here. */
export function redactMessage(m: OpMessage, values: Record<string, string | undefined>): OpMessage {
  const r = (x: string | undefined) => (x === undefined ? x : redactEnvSecrets(x, values));
  const out: OpMessage = { ...m };
  if (m.reason !== undefined) out.reason = r(m.reason);
  if (m.text !== undefined) out.text = r(m.text);
  if (m.revert) out.revert = { ...m.revert, ...(m.revert.error !== undefined ? { error: r(m.revert.error) } : {}) };
  if (m.alert) out.alert = { ...m.alert, problem: r(m.alert.problem)! };
  return out;
}

export function completeMessage(m: OpMessage, now: Date = new Date()): Required<Pick<OpMessage, 'host' | 'at'>> & OpMessage {
  const revert = m.revert ? { ...m.revert, error: oneLine(m.revert.error) } : undefined;
  if (revert && revert.error === undefined) delete revert.error;
  return { ...m, reason: oneLine(m.reason), revert, host: m.host || hostname(), at: m.at || now.toISOString() };
}

/** One line, no markup (Telegram plain text; safe in any chat). */
export function formatText(m0: OpMessage, now: Date = new Date()): string {
  const m = completeMessage(m0, now);
  if (m.text) return `${m.text}${m.reason && m.outcome === 'failed' ? `: ${m.reason}` : ''} [${m.host}]`;
  const mark = m.outcome === 'ok' ? '✅' : '❌';
  if (m.alert) {
    const head = { started: 'PROBLEM', reminder: 'STILL FAILING', resolved: 'RESOLVED' }[m.alert.state];
    const since = m.alert.state === 'started' ? '' : ` (since ${m.alert.since.replace(/\.\d+Z$/, 'Z')})`;
    return `${mark} lazyflow ${head} ${m.alert.problem}${since}${m.reason ? `: ${m.reason}` : ''} [${m.host}]`;
  }
  const parts = [`${mark} lazyflow ${m.operation} ${m.outcome === 'ok' ? 'ok' : 'FAILED'}`];
  if (m.release) parts.push(m.release);
  if (m.backup) parts.push(`backup ${m.backup}`);
  if (m.durationMs !== undefined) parts.push(`in ${formatDuration(m.durationMs)}`);
  return `${parts.join(' ')}${m.reason ? `: ${m.reason}` : ''}${m.revert ? `; ${revertText(m.revert)}` : ''} [${m.host}]`;
}

function revertText(r: RevertInfo): string {
  if (!r.ok) return `automatic revert FAILED${r.error ? `: ${r.error}` : ''}`;
  if (!r.to) return 'reverted: the failed app is stopped, there was nothing to go back to';
  return `reverted to ${r.to}${r.restoredDb ? ', pre-deploy backup restored' : ', data kept'}`;
}

export function webhookPayload(m0: OpMessage, now: Date = new Date()): WebhookPayload {
  const m = completeMessage(m0, now);
  const text = formatText(m, now);
  return {
    text,
    content: text,
    source: 'lazyflow',
    operation: m.operation,
    outcome: m.outcome,
    release: m.release ?? null,
    backup: m.backup ?? null,
    duration_ms: m.durationMs ?? null,
    reason: m.reason ?? null,
    revert: m.revert ?? null,
    host: m.host,
    at: m.at,
    alert: m.alert ?? null,
  };
}
