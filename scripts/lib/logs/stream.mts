// The deployment's logs as one time-ordered stream, pure: lines from the app and Caddy (docker
// compose logs --timestamps), the toolkit's ops.log and the critical-section logs
// (critical-<id>.log) become entries; entries are merged by time and filtered (--since, --grep,
// --level, --update). No I/O here: lib/logs/read.mts gathers the lines, tests feed tables.
// Any line may not be JSON (a stack trace, what Bun printed before the logger started): it is kept
// as text, at the time of the line before it when it carries none.

export type LogSource = 'app' | 'caddy' | 'ops' | 'critical';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface LogEntry {
  /** ms since the epoch; lines without a time of their own take the previous line's */
  at: number;
  source: LogSource;
  /** null: a line that says nothing about its level (plain text) */
  level: LogLevel | null;
  /** the parsed JSON object, when the line is one */
  fields: Record<string, unknown> | null;
  /** the line's own text (without Docker's timestamp) */
  text: string;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** debug/info/ok/warn/warning/error/fatal/panic/... in any case, to one of the four; null if unknown */
export function normalLevel(v: unknown): LogLevel | null {
  if (typeof v !== 'string') return null;
  const l = v.trim().toLowerCase();
  if (l === 'debug' || l === 'trace') return 'debug';
  if (l === 'info' || l === 'ok' || l === 'notice') return 'info';
  if (l === 'warn' || l === 'warning') return 'warn';
  if (['error', 'err', 'fatal', 'panic', 'critical', 'dpanic'].includes(l)) return 'error';
  return null;
}

function parseJsonObject(text: string): Record<string, unknown> | null {
  const t = text.trim();
  if (!t.startsWith('{')) return null;
  try {
    const v = JSON.parse(t);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const DOCKER_TS = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ?(.*)$/;

/** Date.parse for RFC 3339 with nanoseconds (Docker's), which Date.parse itself may refuse */
export function parseTime(iso: string): number | null {
  const t = Date.parse(iso.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isFinite(t) ? t : null;
}

/**
 * The time a JSON line gives itself: the app's `ts` (ISO) or Caddy's `ts` (seconds since the epoch).
 * Preferred over Docker's stamp, which is when Docker read the line from the container's pipe (a few
 * ms later, and not in the same order across containers); all containers share the host's clock.
 */
function ownTime(fields: Record<string, unknown> | null): number | null {
  const ts = fields?.ts;
  if (typeof ts === 'number' && ts > 1e9 && ts < 1e11) return Math.round(ts * 1000);
  if (typeof ts === 'string' && /^\d{4}-\d\d-\d\dT/.test(ts)) return parseTime(ts);
  return null;
}

/**
 * Lines of `docker compose logs --timestamps --no-log-prefix <service>`: Docker's timestamp, then
 * the container's line; a JSON line's own time wins (ownTime).
 */
export function parseComposeLines(lines: readonly string[], source: 'app' | 'caddy', startAt = 0): LogEntry[] {
  const out: LogEntry[] = [];
  let prev = startAt;
  for (const line of lines) {
    if (!line.trim()) continue;
    const m = DOCKER_TS.exec(line);
    const stamped = m ? parseTime(m[1]) : null;
    const text = m && stamped !== null ? m[2] : line;
    const fields = parseJsonObject(text);
    const at = ownTime(fields) ?? stamped;
    if (at !== null) prev = at;
    out.push({ at: prev, source, level: fields ? normalLevel(fields.level) : null, fields, text });
  }
  return out;
}

const OPS_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (\w+)\s+(.*)$/;

/** Lines of STATE_DIR/logs/ops.log: `<ISO time> <LEVEL> [<op> <pid>] <message>`. */
export function parseOpsLines(lines: readonly string[], startAt = 0): LogEntry[] {
  const out: LogEntry[] = [];
  let prev = startAt;
  for (const line of lines) {
    if (!line.trim()) continue;
    const m = OPS_LINE.exec(line);
    const at = m ? parseTime(m[1]) : null;
    if (m && at !== null) {
      prev = at;
      out.push({ at, source: 'ops', level: normalLevel(m[2]), fields: null, text: m[3] });
    } else out.push({ at: prev, source: 'ops', level: null, fields: null, text: line });
  }
  return out;
}

const CRITICAL_LINE = /^(\d\d):(\d\d):(\d\d) (\w+)\s+(.*)$/;
const CRITICAL_ID_TIME = /^critical-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z?/;

/**
 * A critical-section log (critical-<id>.log): the detached worker's terminal lines, `HH:MM:SS level
 * message`, with no date. The date comes from the operation id in the file name (it starts with the
 * operation's UTC time); a time earlier than the one before it is the next day. null when the name
 * carries no time (then the file is not read: its lines cannot be placed).
 */
export function parseCriticalLines(fileName: string, lines: readonly string[]): LogEntry[] | null {
  const id = CRITICAL_ID_TIME.exec(fileName);
  if (!id) return null;
  const start = Date.UTC(+id[1], +id[2] - 1, +id[3], +id[4], +id[5], +id[6]);
  const dayStart = Date.UTC(+id[1], +id[2] - 1, +id[3]);
  const out: LogEntry[] = [];
  let prev = start;
  let day = dayStart;
  for (const line of lines) {
    if (!line.trim()) continue;
    const m = CRITICAL_LINE.exec(line);
    if (m) {
      let at = day + ((+m[1] * 60 + +m[2]) * 60 + +m[3]) * 1000;
      // lines are written in order: going back more than a minute means midnight passed
      while (at < prev - 60_000) {
        day += 86_400_000;
        at += 86_400_000;
      }
      prev = Math.max(prev, at);
      out.push({ at, source: 'critical', level: normalLevel(m[4]), fields: null, text: m[5] });
    } else out.push({ at: prev, source: 'critical', level: null, fields: null, text: line });
  }
  return out;
}

/**
 * The critical-section worker logs each line twice: to ops.log (`[rollout 123] msg`, ms precision) and
 * to its critical-<id>.log (`HH:MM:SS level msg`). Keep the ops.log copy; the critical log adds what did
 * not go through the logger (a child's output, a stack trace), and those stay.
 */
export function dropEchoes(critical: readonly LogEntry[], ops: readonly LogEntry[]): LogEntry[] {
  const opsText = ops.map((o) => ({ at: o.at, msg: o.text.replace(/^\[[^\]]*\] /, '') }));
  // (a multi-line message's later lines carry no time in the critical log, each is a line of its own in ops.log)
  return critical.filter((c) => !opsText.some((o) => o.msg === c.text && Math.abs(o.at - c.at) < 2000));
}

/** Merge already-parsed sources into one stream ordered by time; equal times keep their source's order. */
export function mergeEntries(...sources: LogEntry[][]): LogEntry[] {
  const all = sources.flatMap((s, si) => s.map((e, i) => ({ e, si, i })));
  all.sort((a, b) => a.e.at - b.e.at || a.si - b.si || a.i - b.i);
  return all.map((x) => x.e);
}

// ---- filters ----

export interface LogFilter {
  /** ms since the epoch: only entries at or after */
  since?: number;
  /** case-insensitive regular expression over the line's text */
  grep?: RegExp;
  /** this level and above; a line without a level counts as error when it reads like one, else info */
  level?: LogLevel;
  /** one Telegram update's path: see updatePath */
  update?: number;
}

const ERRORISH = /\b(error|fatal|panic|exception|uncaught|failed)\b/i;

/** the level a filter sees: a plain-text line that reads like an error (a stack trace's head) is one */
export function effectiveLevel(e: LogEntry): LogLevel {
  return e.level ?? (ERRORISH.test(e.text) ? 'error' : 'info');
}

/** The update id an entry is about: the app's `update_id` field, or a plain "update 123" / "update_id":123 in text. */
export function updateIdOf(e: LogEntry): number | null {
  const v = e.fields?.update_id;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (e.fields) return null;
  const m = /\bupdate[_ ]id"?[:= ]\s*(\d+)|\bupdate (\d+)\b/.exec(e.text);
  return m ? Number(m[1] ?? m[2]) : null;
}

/** a webhook request line: the app's request log or Caddy's access log, for POST /webhook/...; its time window */
export function webhookRequestWindow(e: LogEntry): { from: number; to: number } | null {
  const f = e.fields;
  if (!f) return null;
  if (e.source === 'app' && f.msg === 'request' && typeof f.path === 'string' && f.path.startsWith('/webhook/')) {
    const ms = typeof f.ms === 'number' ? f.ms : 0;
    return { from: e.at - ms, to: e.at };
  }
  const req = f.request as { uri?: unknown; method?: unknown } | undefined;
  if (e.source === 'caddy' && req && typeof req.uri === 'string' && req.uri.startsWith('/webhook/')) {
    // Caddy logs a request when it ends; duration is in seconds
    const d = typeof f.duration === 'number' ? f.duration * 1000 : 0;
    return { from: e.at - d, to: e.at };
  }
  return null;
}

/** clock slack between an app line and the webhook request that carried it (Docker stamps both) */
const WINDOW_SLACK_MS = 5;

/**
 * One update's whole path: every line about it (the app's handling, attempts, the dead letter, the
 * toolkit's retry), and the webhook requests that carried it. Caddy's access log and the app's
 * request log carry no update_id (the body is not logged), so a webhook request belongs to the
 * update when the app handled the update while that request was open.
 */
export function updatePath(entries: readonly LogEntry[], updateId: number): LogEntry[] {
  const about = entries.filter((e) => updateIdOf(e) === updateId);
  const times = about.filter((e) => e.source === 'app').map((e) => e.at);
  return entries.filter((e) => {
    if (updateIdOf(e) === updateId) return true;
    const w = webhookRequestWindow(e);
    return w !== null && times.some((t) => t >= w.from - WINDOW_SLACK_MS && t <= w.to + WINDOW_SLACK_MS);
  });
}

export function filterEntries(entries: readonly LogEntry[], f: LogFilter): LogEntry[] {
  let out = entries.filter((e) => (f.since === undefined || e.at >= f.since) && (!f.level || RANK[effectiveLevel(e)] >= RANK[f.level]));
  if (f.update !== undefined) out = updatePath(out, f.update);
  if (f.grep) out = out.filter((e) => f.grep!.test(e.text));
  return out;
}

// ---- options ----

const DURATION = /^(\d+(?:\.\d+)?)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** --since: a duration back from now (90s, 30m, 2h, 7d) or an ISO time; null if neither */
export function parseSince(text: string, nowMs: number): number | null {
  const t = text.trim();
  const m = DURATION.exec(t);
  if (m) return nowMs - Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (/^\d{4}-\d\d-\d\d/.test(t)) return parseTime(t);
  return null;
}

/** --grep: a case-insensitive regular expression; null if it does not compile */
export function parseGrep(text: string): RegExp | null {
  try {
    return new RegExp(text, 'i');
  } catch {
    return null;
  }
}

// ---- output ----

const HIDDEN = new Set(['ts', 'level', 'msg', 'time']);

/** One line for a terminal: time, source, level, and the message with its fields as key=value. */
export function formatEntry(e: LogEntry): string {
  const time = new Date(e.at).toISOString();
  const level = (e.level ?? '-').padEnd(5);
  return `${time} ${e.source.padEnd(8)} ${level} ${describeEntry(e)}`;
}

function describeEntry(e: LogEntry): string {
  const f = e.fields;
  if (!f) return e.text;
  const req = f.request as { method?: unknown; uri?: unknown; host?: unknown } | undefined;
  if (e.source === 'caddy' && req && typeof req.uri === 'string') {
    const ms = typeof f.duration === 'number' ? ` ${Math.round(f.duration * 1000)}ms` : '';
    return `${String(req.method ?? '')} ${req.uri} ${String(f.status ?? '')}${ms}`.trim();
  }
  const rest = Object.entries(f)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  return [typeof f.msg === 'string' ? f.msg : '', ...rest].filter(Boolean).join(' ');
}

/** One JSON object per entry for --json. */
export function entryJson(e: LogEntry): Record<string, unknown> {
  return { ts: new Date(e.at).toISOString(), source: e.source, level: e.level, ...(e.fields ? { fields: e.fields } : { text: e.text }) };
}
