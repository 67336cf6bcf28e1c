// logs.mts's pure part: each source's lines become entries, the sources merge in time order, and the
// filters (--since, --level, --grep, --update) pick what an operator asked for. Lines that are not
// JSON are kept.
import { describe, expect, it } from 'vitest';
import {
  dropEchoes, effectiveLevel, filterEntries, formatEntry, mergeEntries, parseComposeLines, parseCriticalLines, parseOpsLines, parseSince, parseGrep, updatePath, type LogEntry,
} from '../../scripts/lib/logs/stream.mts';

const T = (s: string) => Date.parse(`2026-12-07T${s}Z`);
const appLine = (time: string, o: Record<string, unknown>) => `2026-12-07T${time}123456Z ${JSON.stringify({ ts: `2026-12-07T${time}Z`, ...o })}`;
// Docker stamps Caddy's line a little after Caddy's own ts (seconds since the epoch), which wins
const caddyLine = (time: string, uri: string, status: number, duration: number) =>
  `2026-12-07T${time}090000Z ${JSON.stringify({ level: 'info', ts: T(time) / 1000, logger: 'http.log.access', msg: 'handled request', request: { method: 'POST', uri }, status, duration })}`;

describe('parsing each source', () => {
  it.each([
    {
      name: 'app JSON lines take Docker\'s time and the line\'s level',
      got: () => parseComposeLines([appLine('10:00:00.', { level: 'warn', msg: 'update_attempt_failed', update_id: 7 })], 'app'),
      want: [{ at: T('10:00:00.123'), source: 'app', level: 'warn', fields: { ts: '2026-12-07T10:00:00.Z', level: 'warn', msg: 'update_attempt_failed', update_id: 7 } }],
    },
    {
      name: 'a JSON line with its own ts takes that time, not the (later) Docker stamp',
      got: () => parseComposeLines(['2026-12-07T10:00:00.200Z {"ts":"2026-12-07T10:00:00.100Z","level":"info","msg":"x"}', '2026-12-07T10:00:00.300Z {"ts":1796637600.25,"level":"error"}'], 'app'),
      want: [{ at: T('10:00:00.100'), level: 'info' }, { at: Date.UTC(2026, 11, 7, 10, 0, 0, 250), level: 'error' }],
    },
    {
      name: 'a stack trace (not JSON, no time of its own after the stamp) is text, unknown level',
      got: () => parseComposeLines(['2026-12-07T10:00:01.5Z TypeError: x is undefined', '    at main (/app/src/server.ts:3:1)'], 'app'),
      want: [
        { at: T('10:00:01.5'), source: 'app', level: null, fields: null, text: 'TypeError: x is undefined' },
        { at: T('10:00:01.5'), source: 'app', level: null, fields: null, text: '    at main (/app/src/server.ts:3:1)' },
      ],
    },
    {
      name: 'ops.log lines',
      got: () => parseOpsLines(['2026-12-07T10:00:02.000Z WARN  [rollout 42] swap slow', 'continued line']),
      want: [
        { at: T('10:00:02.000'), source: 'ops', level: 'warn', fields: null, text: '[rollout 42] swap slow' },
        { at: T('10:00:02.000'), source: 'ops', level: null, fields: null, text: 'continued line' },
      ],
    },
    {
      name: 'a critical log takes its date from the operation id, and passes midnight',
      got: () => parseCriticalLines('critical-20261207T235958Z-rollout.log', ['23:59:59 info  stop old', '00:00:01 ok    start new']),
      want: [
        { at: Date.parse('2026-12-07T23:59:59Z'), source: 'critical', level: 'info', fields: null, text: 'stop old' },
        { at: Date.parse('2026-12-08T00:00:01Z'), source: 'critical', level: 'info', fields: null, text: 'start new' },
      ],
    },
  ])('$name', ({ got, want }) => {
    expect(got()).toMatchObject(want);
  });

  it('a critical log whose name has no time is not placed (null)', () => {
    expect(parseCriticalLines('critical-x.log', ['10:00:00 info a'])).toBeNull();
  });
});

describe('the critical-section worker writes its lines to ops.log and its own log', () => {
  it('keeps the ops.log copy, and the critical log\'s lines that never went through the logger', () => {
    const ops = parseOpsLines([
      '2026-12-07T10:00:01.400Z INFO  [rollout 77] swap: stop old',
      '2026-12-07T10:00:01.400Z INFO  [rollout 77]   second line of it',
      '2026-12-07T10:00:03.900Z OK    [rollout 77] health (2.1 s)',
    ]);
    const crit = parseCriticalLines('critical-20261207T100000Z-rollout.log', [
      '10:00:01 info  swap: stop old',
      '  second line of it',
      'Error response from daemon: container is restarting',
      '10:00:03 ok    health (2.1 s)',
      '10:00:09 info  swap: stop old',
    ])!;
    expect(dropEchoes(crit, ops).map((e) => e.text)).toEqual(['Error response from daemon: container is restarting', 'swap: stop old']);
  });
});

describe('merge and filters', () => {
  const app = parseComposeLines([
    appLine('10:00:00.', { level: 'info', msg: 'listening' }),
    appLine('10:00:05.', { level: 'warn', msg: 'update_dead_letter', update_id: 42, reason: 'permanent' }),
    appLine('10:00:05.', { level: 'info', msg: 'request', method: 'POST', path: '/webhook/[redacted]', status: 200, ms: 20 }),
    appLine('10:00:09.', { level: 'info', msg: 'update_processed', update_id: 43 }),
    appLine('10:00:09.', { level: 'info', msg: 'request', method: 'POST', path: '/webhook/[redacted]', status: 200, ms: 5 }),
    '2026-12-07T10:00:10.000Z Error: boom',
  ], 'app');
  const caddy = parseComposeLines([
    caddyLine('10:00:05.2', '/webhook/[redacted]', 200, 0.1),
    caddyLine('10:00:07.0', '/health', 200, 0.001),
    caddyLine('10:00:09.2', '/webhook/[redacted]', 200, 0.1),
  ], 'caddy');
  const ops = parseOpsLines(['2026-12-07T10:00:06.000Z INFO  [db 9] dead letter: update 42 retried by the app']);
  const all = mergeEntries(app, caddy, ops);
  const texts = (es: LogEntry[]) => es.map((e) => `${e.source}:${(e.fields?.request as { uri: string } | undefined)?.uri ?? (e.fields?.msg as string | undefined) ?? e.text}`);

  it('merges by time, equal times in source order', () => {
    expect(all.map((e) => e.at)).toEqual([...all.map((e) => e.at)].sort((a, b) => a - b));
    expect(texts(all)).toEqual([
      'app:listening', 'app:update_dead_letter', 'app:request', 'caddy:/webhook/[redacted]', 'ops:[db 9] dead letter: update 42 retried by the app',
      'caddy:/health', 'app:update_processed', 'app:request', 'caddy:/webhook/[redacted]', 'app:Error: boom',
    ]);
  });

  it.each([
    { name: '--since', f: { since: T('10:00:09.2') }, want: ['caddy:/webhook/[redacted]', 'app:Error: boom'] },
    { name: '--level warn (a plain error line counts as error)', f: { level: 'warn' as const }, want: ['app:update_dead_letter', 'app:Error: boom'] },
    { name: '--grep, case-insensitive, over the line', f: { grep: /DEAD_letter/i }, want: ['app:update_dead_letter'] },
    {
      name: "--update: the update's lines and the webhook requests open while the app handled it, not the other update's",
      f: { update: 42 },
      want: ['app:update_dead_letter', 'app:request', 'caddy:/webhook/[redacted]', 'ops:[db 9] dead letter: update 42 retried by the app'],
    },
    { name: '--update with no line about it', f: { update: 999 }, want: [] },
    { name: 'filters combine', f: { update: 43, since: T('10:00:09.1') }, want: ['app:update_processed', 'app:request', 'caddy:/webhook/[redacted]'] },
    { name: '--update and --grep: the path, then the text', f: { update: 42, grep: /webhook/ }, want: ['app:request', 'caddy:/webhook/[redacted]'] },
  ])('$name', ({ f, want }) => {
    expect(texts(filterEntries(all, f))).toEqual(want);
  });

  it('the webhook request of another update is never part of an update\'s path', () => {
    expect(updatePath(all, 43).every((e) => e.at >= T('10:00:09'))).toBe(true);
  });

  it('formats a line for a terminal: time, source, level, message with fields', () => {
    expect(formatEntry(app[1])).toBe('2026-12-07T10:00:05.123Z app      warn  update_dead_letter update_id=42 reason=permanent');
    expect(formatEntry(caddy[0])).toBe('2026-12-07T10:00:05.200Z caddy    info  POST /webhook/[redacted] 200 100ms');
    expect(formatEntry(app[5])).toBe('2026-12-07T10:00:10.000Z app      -     Error: boom');
    expect(effectiveLevel(app[5])).toBe('error');
  });
});

describe('option values', () => {
  const now = T('12:00:00');
  it.each([
    ['90s', now - 90_000],
    ['30m', now - 1_800_000],
    ['2h', now - 7_200_000],
    ['7d', now - 7 * 86_400_000],
    ['2026-12-07T10:00:00Z', T('10:00:00')],
    ['yesterday', null],
    ['5', null],
    ['-1h', null],
  ])('--since %s', (text, want) => expect(parseSince(text, now)).toBe(want));
  it('--grep: a bad regular expression is null (usage error), a good one case-insensitive', () => {
    expect(parseGrep('(')).toBeNull();
    expect(parseGrep('Dead')!.test('update_dead_letter')).toBe(true);
  });
});
