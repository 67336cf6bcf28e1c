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

export interface OpMessage {
  /** rollout, rollback, revert, backup, offsite, restore, drill, recovery, watch, ... */
  operation: string;
  outcome: Outcome;
  /** release id or app tag the operation concerned */
  release?: string;
  durationMs?: number;
  /** the one line that explains a failure (or what the alert is about) */
  reason?: string;
  /** default: this machine's host name */
  host?: string;
  /** ISO time of the event (default: now) */
  at?: string;
  /** free text used as the whole summary line instead of the generated one (legacy notify(text)) */
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
  duration_ms: number | null;
  reason: string | null;
  host: string;
  at: string;
  alert: AlertInfo | null;
}

const MAX_REASON = 300;

function oneLine(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > MAX_REASON ? `${l.slice(0, MAX_REASON - 1)}…` : l || undefined;
}

export function completeMessage(m: OpMessage, now: Date = new Date()): Required<Pick<OpMessage, 'host' | 'at'>> & OpMessage {
  return { ...m, reason: oneLine(m.reason), host: m.host || hostname(), at: m.at || now.toISOString() };
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
  if (m.durationMs !== undefined) parts.push(`in ${formatDuration(m.durationMs)}`);
  return `${parts.join(' ')}${m.reason ? `: ${m.reason}` : ''} [${m.host}]`;
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
    duration_ms: m.durationMs ?? null,
    reason: m.reason ?? null,
    host: m.host,
    at: m.at,
    alert: m.alert ?? null,
  };
}
