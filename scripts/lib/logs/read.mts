// Gathering the log lines that lib/logs/stream.mts merges: the app's and Caddy's container logs
// (docker compose logs, argv from commands/), STATE_DIR/logs/ops.log (and its rotated files) and the
// critical-section logs. Every line is redacted (the env file's secret values) before it is parsed,
// so neither --grep nor --json can show a secret.
import fs from 'node:fs';
import path from 'node:path';
import type { OpsEnv } from '../config/env.mts';
import { composeCtx, composeEnv, logsArgs } from '../commands/compose.mts';
import { docker, dockerProcess } from '../docker/run.mts';
import { redactEnvSecrets } from '../notify/message.mts';
import { dropEchoes, mergeEntries, parseComposeLines, parseCriticalLines, parseOpsLines, type LogEntry } from './stream.mts';

export const LOG_SERVICES = ['app', 'caddy'] as const;

export type Redact = (s: string) => string;
export const redactorFor = (env: OpsEnv): Redact => (s) => redactEnvSecrets(s, env.values);

const lines = (text: string) => text.split('\n');

/** one service's container log since a time (docker's own --since, so old lines are not even read) */
export async function readServiceLog(env: OpsEnv, service: 'app' | 'caddy', sinceMs: number, redact: Redact): Promise<LogEntry[]> {
  const args = logsArgs(composeCtx(env), { service, since: new Date(sinceMs).toISOString(), timestamps: true, noLogPrefix: true });
  const r = await docker(args, { nothrow: true, env: composeEnv(env.values) });
  if (r.exitCode !== 0) throw new Error(`docker compose logs ${service} failed: ${redact(r.stderr.trim())}`);
  // compose writes the container's stdout and stderr both to its stdout; its own notes go to stderr
  return parseComposeLines(lines(redact(r.stdout)), service);
}

/** ops.log and its rotated files (oldest first), only those written to since `sinceMs` */
export function readOpsLog(env: OpsEnv, sinceMs: number, redact: Redact): LogEntry[] {
  const base = env.layout.opsLog;
  const files: string[] = [];
  for (let i = 9; i >= 1; i--) files.push(`${base}.${i}`);
  files.push(base);
  const out: LogEntry[][] = [];
  for (const f of files) {
    let st: fs.Stats;
    try {
      st = fs.statSync(f);
    } catch {
      continue;
    }
    if (!st.isFile() || st.mtimeMs < sinceMs) continue;
    out.push(parseOpsLines(lines(redact(fs.readFileSync(f, 'utf8')))));
  }
  return out.flat();
}

/** the critical-section logs (STATE_DIR/logs/critical-<id>.log) written to since `sinceMs` */
export function readCriticalLogs(env: OpsEnv, sinceMs: number, redact: Redact): LogEntry[] {
  const dir = env.layout.logs;
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /^critical-.+\.log$/.test(n));
  } catch {
    return [];
  }
  const out: LogEntry[][] = [];
  for (const n of names.sort()) {
    const f = path.join(dir, n);
    try {
      const st = fs.statSync(f);
      if (!st.isFile() || st.mtimeMs < sinceMs) continue;
      const parsed = parseCriticalLines(n, lines(redact(fs.readFileSync(f, 'utf8'))));
      if (parsed) out.push(parsed);
    } catch {
      /* pruned meanwhile */
    }
  }
  return mergeEntries(...out);
}

/** everything since `sinceMs`, one stream in time order */
export async function readAll(env: OpsEnv, sinceMs: number, redact: Redact = redactorFor(env)): Promise<LogEntry[]> {
  const [app, caddy] = await Promise.all(LOG_SERVICES.map((s) => readServiceLog(env, s, sinceMs, redact)));
  const ops = readOpsLog(env, sinceMs, redact);
  return mergeEntries(app, caddy, ops, dropEchoes(readCriticalLogs(env, sinceMs, redact), ops));
}

/**
 * Follow: new container lines (compose logs --follow from `fromMs`) and new lines appended to ops.log
 * and the critical logs (polled), each passed to onEntry as it arrives. Runs until the signal aborts.
 */
export async function follow(env: OpsEnv, fromMs: number, onEntry: (e: LogEntry) => void, signal: AbortSignal, redact: Redact = redactorFor(env)): Promise<void> {
  const procs = LOG_SERVICES.map((service) => {
    const p = dockerProcess(logsArgs(composeCtx(env), { service, since: new Date(fromMs).toISOString(), timestamps: true, noLogPrefix: true, follow: true }), { env: composeEnv(env.values) });
    let rest = '';
    p.stdout.on('data', (chunk: Buffer) => {
      const ls = (rest + chunk.toString()).split('\n');
      rest = ls.pop() ?? '';
      for (const e of parseComposeLines(ls.map(redact), service)) onEntry(e);
    });
    return p;
  });
  // files: remember how far each was read; a rotated ops.log starts again at 0
  const offsets = new Map<string, number>();
  const startFiles = () => [env.layout.opsLog, ...critNames()];
  const critNames = () => {
    try {
      return fs.readdirSync(env.layout.logs).filter((n) => /^critical-.+\.log$/.test(n)).map((n) => path.join(env.layout.logs, n));
    } catch {
      return [];
    }
  };
  for (const f of startFiles()) {
    try {
      offsets.set(f, fs.statSync(f).size);
    } catch {
      /* not there yet */
    }
  }
  let recentOps: LogEntry[] = [];
  const poll = () => {
    for (const f of startFiles()) {
      let size: number;
      try {
        size = fs.statSync(f).size;
      } catch {
        continue;
      }
      let from = offsets.get(f) ?? 0;
      if (size < from) from = 0;
      if (size === from) continue;
      const fd = fs.openSync(f, 'r');
      const buf = Buffer.alloc(size - from);
      try {
        fs.readSync(fd, buf, 0, buf.length, from);
      } finally {
        fs.closeSync(fd);
      }
      const text = buf.toString('utf8');
      const whole = text.lastIndexOf('\n') + 1;
      offsets.set(f, from + Buffer.byteLength(text.slice(0, whole)));
      const ls = lines(redact(text.slice(0, whole)));
      let entries: LogEntry[];
      if (f === env.layout.opsLog) {
        entries = parseOpsLines(ls, Date.now());
        // ops.log is read first in each poll, and the worker writes it before its own log: its echo is here
        recentOps = [...recentOps, ...entries].filter((e) => e.at > Date.now() - 10_000);
      } else entries = dropEchoes(parseCriticalLines(path.basename(f), ls) ?? [], recentOps);
      for (const e of entries) onEntry(e);
    }
  };
  const timer = setInterval(poll, 500);
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  clearInterval(timer);
  for (const p of procs) await p.kill().catch(() => {});
}
