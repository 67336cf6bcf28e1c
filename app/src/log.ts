// JSON logs, one line per event, to stdout: {ts, level, msg, ...fields}.

import type { LogLevel } from "./env.ts";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  enabled(level: LogLevel): boolean;
}

export type LogSink = (line: string) => void;

export function createLogger(level: LogLevel = "info", sink: LogSink = (l) => console.log(l)): Logger {
  const min = ORDER[level];
  const write = (lvl: LogLevel, msg: string, fields?: Fields) => {
    if (ORDER[lvl] < min) return;
    const rec: Fields = { ts: new Date().toISOString(), level: lvl, msg };
    if (fields) for (const [k, v] of Object.entries(fields)) if (!(k in rec)) rec[k] = v instanceof Error ? errorFields(v) : v;
    let line: string;
    try {
      line = JSON.stringify(rec);
    } catch {
      line = JSON.stringify({ ts: rec.ts, level: lvl, msg, note: "unserialisable fields dropped" });
    }
    sink(line);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    enabled: (l) => ORDER[l] >= min,
  };
}

export function errorFields(e: unknown): Fields {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack?.split("\n").slice(0, 6).join("\n") };
  return { message: String(e) };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger("error", () => {});
