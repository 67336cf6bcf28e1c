// Expected errors of the operator toolkit. Each carries the exit code it maps to and,
// where possible, where the problem is (file/key/step) and the next command to run (hint).
// runMain() prints these without a stack trace; anything else is a bug and keeps its stack.

export const EXIT_OK = 0;
export const EXIT_FAILED = 1; // a check or step failed
export const EXIT_USAGE = 2; // usage or config error

export const EXIT_CODES_TEXT = [
  'Exit status:',
  '  0  ok',
  '  1  a check or step failed (details on stderr and in STATE_DIR/logs/ops.log)',
  '  2  usage or config error (bad flag, missing or invalid env file key)',
].join('\n');

export class ToolkitError extends Error {
  exitCode: number = EXIT_FAILED;
  hint?: string;
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    if (opts.hint) this.hint = opts.hint;
  }
}

export class UsageError extends ToolkitError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts);
    this.exitCode = EXIT_USAGE;
  }
}

export class ConfigError extends ToolkitError {
  file?: string;
  key?: string;
  constructor(message: string, opts: { file?: string; key?: string; hint?: string; cause?: unknown } = {}) {
    const where: string[] = [];
    if (opts.file && !message.includes(opts.file)) where.push(opts.file);
    if (opts.key && !message.includes(opts.key)) where.push(`key ${opts.key}`);
    super(where.length ? `${message} (${where.join(', ')})` : message, opts);
    this.exitCode = EXIT_USAGE;
    if (opts.file) this.file = opts.file;
    if (opts.key) this.key = opts.key;
  }
}

export class StepError extends ToolkitError {
  step?: string;
  constructor(message: string, opts: { step?: string; hint?: string; cause?: unknown } = {}) {
    super(opts.step ? `${opts.step}: ${message}` : message, opts);
    this.exitCode = EXIT_FAILED;
    if (opts.step) this.step = opts.step;
  }
}

export function isToolkitError(err: unknown): err is ToolkitError {
  return err instanceof ToolkitError;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A gate or swap failure, with the new container's health and logs to print. */
export class GateError extends StepError {
  diagnostics?: string;
  constructor(message: string, opts: { step: string; hint?: string; diagnostics?: string }) {
    super(message, { step: opts.step, hint: opts.hint });
    this.diagnostics = opts.diagnostics;
  }
}
