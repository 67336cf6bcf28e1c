// Operator-facing logger: human lines on the terminal (colour only on a TTY without NO_COLOR),
// and every line appended to STATE_DIR/logs/ops.log with timestamp, level and operation.
// --quiet prints errors only (cron mails nothing when all is well); --json keeps stdout for data,
// so human lines go to stderr then.
// ops.log has a bound: before a write would take it past maxBytes it is rotated (ops.log ->
// ops.log.1 -> ... -> ops.log.<keep>, the oldest dropped), by rename, under a small lock file so
// that two operations writing at once rotate once and lose no line.
import { appendFileSync, chmodSync, fchmodSync, fstatSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { Chalk, type ChalkInstance } from 'chalk';
import { errorMessage, isToolkitError } from './errors.mts';

export type Level = 'debug' | 'info' | 'ok' | 'warn' | 'error';

export interface LoggerOptions {
  /** append every line here (STATE_DIR/logs/ops.log); can be set later with setOpsLog() */
  opsLogPath?: string;
  /** errors only on the terminal (the ops log still gets everything) */
  quiet?: boolean;
  /** stdout is reserved for JSON data: human lines go to stderr */
  json?: boolean;
  /** rotate the ops log before it grows past this (default OPS_LOG_ROTATION) */
  opsLogRotation?: OpsLogRotation;
  /** operation name written in the ops log (backup, restore, rollout, ...) */
  op?: string;
  /**
   * when the ops log is set, rotate this process's own output file if it is a log beside it (cron's
   * `>>STATE_DIR/logs/<job>.log`; see rotateOutputLog). Default true; the detached critical-section
   * worker turns it off: its output file is followed by name and bounded by pruning instead.
   */
  rotateOutputLog?: boolean;
  /** print debug lines (also LOG_LEVEL=debug) */
  verbose?: boolean;
  /** for tests: where terminal output goes */
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface OpsLogRotation {
  /** a file is rotated before a write would take it past this size */
  maxBytes: number;
  /** rotated files kept: ops.log.1 (newest) .. ops.log.<keep> */
  keep: number;
}

/** at most (keep + 1) x maxBytes on disk: 60 MiB, months of daily operations */
export const OPS_LOG_ROTATION: OpsLogRotation = { maxBytes: 10 * 1024 * 1024, keep: 5 };

/**
 * A scheduled job's output file (cron appends each run to STATE_DIR/logs/<job>.log; the jobs run with
 * --quiet, so errors only): at most (keep + 1) x (maxBytes + two runs' output) per job.
 */
export const OUTPUT_LOG_ROTATION: OpsLogRotation = { maxBytes: 1024 * 1024, keep: 3 };

/** The regular file this process's file descriptor `fd` writes to, or null (a terminal, pipe, socket, or no /proc). */
export function outputFile(fd = 1): string | null {
  try {
    const p = readlinkSync(`/proc/self/fd/${fd}`);
    return p.startsWith('/') && statSync(p).isFile() ? p : null;
  } catch {
    return null;
  }
}

/**
 * Bound the file this process's output is appended to, the way ops.log is bounded (rotateIfFull, at
 * the start of a run): only a `*.log` directly in the ops log's directory (a cron job's
 * `>>STATE_DIR/logs/<job>.log 2>&1`), never the ops log itself and never a file elsewhere (an
 * operator's own redirect). This run's output then goes on into <job>.log.1; the next run starts
 * the fresh <job>.log. Returns whether it rotated.
 */
export function rotateOutputLog(opsLogPath: string, rotation: OpsLogRotation = OUTPUT_LOG_ROTATION, fd = 1): boolean {
  const out = outputFile(fd);
  if (!out || out === opsLogPath || dirname(out) !== dirname(opsLogPath) || !out.endsWith('.log')) return false;
  return rotateIfFull(out, rotation);
}

/** a rotation lock older than this belongs to a writer that died while rotating */
const ROTATION_LOCK_MAX_AGE_MS = 30_000;

/** how long a writer waits for another's rotation before appending anyway */
const ROTATION_WAIT_MS = 100;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

const errCode = (e: unknown) => (e as NodeJS.ErrnoException).code;

/**
 * Rotate `path` if appending `incoming` bytes would take it past maxBytes. Only one writer
 * rotates at a time (an O_EXCL lock file); the others skip rotation and append to whichever file
 * is current, so no line is lost: a writer that opened the old file just before the rename
 * appends to it as ops.log.1. Returns whether this call rotated.
 */
export function rotateIfFull(path: string, rotation: OpsLogRotation, incoming = 0): boolean {
  const full = () => {
    try {
      const size = statSync(path).size;
      return size > 0 && size + incoming > rotation.maxBytes;
    } catch (e) {
      if (errCode(e) === 'ENOENT') return false;
      throw e;
    }
  };
  if (!full()) return false;
  const lock = `${path}.rotating`;
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
  } catch (e) {
    if (errCode(e) !== 'EEXIST') throw e;
    try {
      if (Date.now() - statSync(lock).mtimeMs > ROTATION_LOCK_MAX_AGE_MS) unlinkSync(lock);
    } catch {
      /* gone already */
    }
    // Someone else rotates right now (a millisecond): let it finish, so that this line goes to the
    // fresh file rather than past the bound of the full one. Never more than ROTATION_WAIT_MS.
    const until = performance.now() + ROTATION_WAIT_MS;
    while (exists(lock) && performance.now() < until) Atomics.wait(sleeper, 0, 0, 1);
    return false;
  }
  try {
    if (!full()) return false; // another writer rotated between our check and our lock
    const pending = `${path}.0`;
    // a rotation interrupted after its first rename left ops.log.0: put it in place first
    if (exists(pending)) shiftInto(path, pending, rotation.keep);
    // Move the full file aside first, in one rename, so that every writer from now on appends to a
    // fresh ops.log while the numbered files shift.
    renameSync(path, pending);
    shiftInto(path, pending, rotation.keep);
    return true;
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      /* ignore */
    }
  }
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch (e) {
    if (errCode(e) === 'ENOENT') return false;
    throw e;
  }
}

/** ops.log.<i> -> ops.log.<i+1> for every kept file (the one at <keep> is replaced), then pending -> ops.log.1 */
function shiftInto(path: string, pending: string, keep: number) {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  const numbers = readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && /^[1-9]\d*$/.test(f.slice(prefix.length)))
    .map((f) => Number(f.slice(prefix.length)))
    .sort((a, b) => b - a);
  const last = Math.max(1, keep);
  for (const n of numbers) {
    if (n >= last) unlinkSync(`${path}.${n}`); // the oldest, and any beyond a lowered keep
    else renameSync(`${path}.${n}`, `${path}.${n + 1}`);
  }
  renameSync(pending, `${path}.1`);
}

/**
 * The logs hold operational detail (hosts, paths, errors): root's only. ops.log 0600, the logs
 * directory without access for others, and a cron job's own output file (our stdout, appended by
 * cron's shell with its umask) 0600 as well. Once per logger; a file we do not own is left alone.
 */
function restrictLogs(opsLogPath: string): boolean {
  const mine = (uid: number) => typeof process.getuid !== 'function' || uid === process.getuid();
  try {
    const d = statSync(dirname(opsLogPath));
    if (mine(d.uid) && d.mode & 0o007) chmodSync(dirname(opsLogPath), d.mode & 0o770);
  } catch {
    /* reported by the append, if at all */
  }
  try {
    const f = lstatSync(opsLogPath);
    if (f.isFile() && mine(f.uid) && f.mode & 0o077) chmodSync(opsLogPath, 0o600);
  } catch {
    /* created 0600 by the append */
  }
  try {
    const out = fstatSync(1);
    const file = outputFile(1);
    if (out.isFile() && mine(out.uid) && out.mode & 0o077 && file && dirname(file) === dirname(opsLogPath)) fchmodSync(1, 0o600);
  } catch {
    /* stdout is no file of ours */
  }
  return true;
}

export interface StepHandle {
  done(detail?: string): number;
  fail(err?: unknown): number;
  /** where a long step is now (e.g. the build's current Dockerfile step): beside the spinner on a terminal, a line otherwise */
  progress(detail: string): void;
}

export interface TableColumn {
  key: string;
  label?: string;
  align?: 'left' | 'right';
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  ok(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  step(name: string): StepHandle;
  table(rows: Record<string, unknown>[], columns: (string | TableColumn)[]): void;
  /** data output to stdout, never suppressed by --quiet (e.g. --json, --list) */
  out(text: string): void;
  setOpsLog(path: string | undefined): void;
  readonly quiet: boolean;
  readonly json: boolean;
  readonly op: string;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${m} min ${s} s`;
}

/** Compact age for tables: 45s, 12m, 5h, 3d. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.round(h / 24)}d`;
}

/** Times named phases of an operation; `phases` is what the releases journal records. */
/** `timed(name, f)` runs f and records its milliseconds under name, in `phases` (a caller's record, or a new one) */
export function createPhaseTimer(phases: Record<string, number> = {}) {
  const timed = async <T,>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await f();
    } finally {
      phases[name] = Math.round(performance.now() - t);
    }
  };
  return { phases, timed };
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function renderTable(rows: Record<string, unknown>[], columns: (string | TableColumn)[]): string {
  const cols: TableColumn[] = columns.map((c) => (typeof c === 'string' ? { key: c } : c));
  const cell = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  const header = cols.map((c) => c.label ?? c.key);
  const body = rows.map((r) => cols.map((c) => cell(r[c.key])));
  // a cell's width is what the terminal shows: colour codes take no column
  const width = (v: string) => stripVTControlCharacters(v).length;
  const widths = header.map((h, i) => Math.max(width(h), ...body.map((b) => width(b[i]))));
  const pad = (v: string, w: number, right: boolean) => (right ? ' '.repeat(Math.max(0, w - width(v))) + v : v + ' '.repeat(Math.max(0, w - width(v))));
  const line = (cells: string[]) =>
    cells
      .map((v, i) => pad(v, widths[i], cols[i].align === 'right'))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n') + '\n';
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function createLogger(opts: LoggerOptions = {}): Logger {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const quiet = Boolean(opts.quiet);
  const json = Boolean(opts.json);
  const op = opts.op ?? 'ops';
  const verbose = Boolean(opts.verbose) || process.env.LOG_LEVEL === 'debug';
  const tty = Boolean((stdout as { isTTY?: boolean }).isTTY) && !process.env.NO_COLOR;
  const c: ChalkInstance = new Chalk({ level: tty ? 1 : 0 });
  // human, non-error lines: stdout normally, stderr when stdout carries JSON
  const humanStream = json ? stderr : stdout;
  const humanTty = json ? Boolean((stderr as { isTTY?: boolean }).isTTY) : tty;
  let opsLogPath = opts.opsLogPath;
  const rotation = opts.opsLogRotation ?? OPS_LOG_ROTATION;
  let opsLogBroken = false;
  let logsRestricted = false;
  let spinnerTimer: NodeJS.Timeout | undefined;
  let spinnerText = '';

  function appendOps(level: Level, msg: string) {
    if (!opsLogPath || opsLogBroken) return;
    try {
      mkdirSync(dirname(opsLogPath), { recursive: true, mode: 0o750 });
      if (!logsRestricted) logsRestricted = restrictLogs(opsLogPath);
      const ts = new Date().toISOString();
      const lines = msg.split('\n').map((l) => `${ts} ${level.toUpperCase().padEnd(5)} [${op} ${process.pid}] ${l}\n`);
      const text = lines.join('');
      rotateIfFull(opsLogPath, rotation, Buffer.byteLength(text));
      // one O_APPEND write per message: concurrent writers never interleave within it
      appendFileSync(opsLogPath, text, { mode: 0o600 });
    } catch (err) {
      opsLogBroken = true;
      stderr.write(`warning: cannot append to ops log ${opsLogPath}: ${errorMessage(err)}\n`);
    }
  }

  function clearSpinner() {
    if (spinnerTimer) humanStream.write('\r\x1b[K');
  }
  function redrawSpinner() {
    if (spinnerTimer) humanStream.write(`\r\x1b[K${spinnerText}`);
  }

  const ts = () => c.dim(new Date().toISOString().slice(11, 19));
  function emit(level: Level, msg: string) {
    appendOps(level, msg);
    if (level === 'debug' && !verbose) return;
    if (quiet && level !== 'error') return;
    const tag = {
      debug: c.gray('debug'),
      info: c.blue('info '),
      ok: c.green('ok   '),
      warn: c.yellow('warn '),
      error: c.red('error'),
    }[level];
    const stream = level === 'error' || level === 'warn' ? stderr : humanStream;
    clearSpinner();
    stream.write(`${ts()} ${tag} ${msg}\n`);
    redrawSpinner();
  }

  const logger: Logger = {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    ok: (m) => emit('ok', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    step(name: string): StepHandle {
      const started = performance.now();
      appendOps('info', `${name} ...`);
      let frame = 0;
      const showSpinner = humanTty && !quiet && !spinnerTimer;
      if (showSpinner) {
        spinnerText = `${SPINNER[0]} ${name}`;
        spinnerTimer = setInterval(() => {
          frame = (frame + 1) % SPINNER.length;
          const secs = ((performance.now() - started) / 1000).toFixed(0);
          spinnerText = `${c.cyan(SPINNER[frame])} ${name} ${c.dim(`${secs}s`)}${now ? ` ${c.dim(now)}` : ''}`;
          redrawSpinner();
        }, 100);
        spinnerTimer.unref();
        redrawSpinner();
      } else if (!quiet && !humanTty) {
        // no spinner: say that a long step started, so a log reader sees where it hung
        humanStream.write(`${ts()} ${c.blue('info ')} ${name} ...\n`);
      }
      let finished = false;
      let now = '';
      const stop = () => {
        const ms = performance.now() - started;
        if (showSpinner && spinnerTimer) {
          clearInterval(spinnerTimer);
          clearSpinner();
          spinnerTimer = undefined;
        }
        finished = true;
        return ms;
      };
      return {
        done(detail?: string) {
          if (finished) return 0;
          const ms = stop();
          emit('ok', `${name} (${formatDuration(ms)})${detail ? `: ${detail}` : ''}`);
          return ms;
        },
        progress(detail: string) {
          if (finished || detail === now) return;
          now = detail;
          appendOps('debug', `${name}: ${detail}`);
          // the spinner shows it at its next frame; without one, each new stage is a line
          if (!showSpinner && !quiet) humanStream.write(`${ts()} ${c.blue('info ')} ${name}: ${detail}\n`);
        },
        fail(err?: unknown) {
          if (finished) return 0;
          const ms = stop();
          const why = err === undefined ? '' : `: ${errorMessage(err)}`;
          emit('error', `${name} failed after ${formatDuration(ms)}${why}`);
          if (err !== undefined && !isToolkitError(err) && err instanceof Error && err.stack) appendOps('debug', err.stack);
          return ms;
        },
      };
    },
    table(rows, columns) {
      const text = renderTable(rows, columns);
      appendOps('info', text.trimEnd());
      clearSpinner();
      stdout.write(text);
      redrawSpinner();
    },
    out(text: string) {
      clearSpinner();
      stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      redrawSpinner();
    },
    setOpsLog(path) {
      opsLogPath = path;
      opsLogBroken = false;
      if (path && opts.rotateOutputLog !== false) {
        try {
          rotateOutputLog(path);
        } catch (err) {
          stderr.write(`warning: cannot rotate this job's log beside ${path}: ${errorMessage(err)}\n`);
        }
      }
    },
    get quiet() {
      return quiet;
    },
    get json() {
      return json;
    },
    get op() {
      return op;
    },
  };
  return logger;
}
