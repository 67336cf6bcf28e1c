// Entry wrapper for scripts/*.mts: parse flags (UsageError -> exit 2), print --help (exit 0),
// run the command, map errors to exit codes and print the hint. Expected errors (ToolkitError)
// never print a stack trace; anything else is a bug and does.
import { basename } from 'node:path';
import { parseArgs, helpText, type CommandSpec, type ParsedArgs } from './args.mts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, errorMessage, isToolkitError } from './errors.mts';
import { createLogger, type Logger } from './log.mts';
import { sharedValues } from './shared.mts';
import { REPO_ROOT } from '../config/env.mts';
import { TRUST_CHECK_ENV, trustProblems } from '../schedules/trust.mts';

export type CommandFn = (args: ParsedArgs, log: Logger) => Promise<number | void>;

/** the script's own arguments, whether run as `node scripts/x.mts ...` or `npx zx scripts/x.mts ...` */
export function scriptArgv(argv: readonly string[] = process.argv): string[] {
  const runner = argv[1] ?? '';
  const viaZx = /(^|[\\/])zx([\\/]|$)/.test(runner) || /^zx(\.[cm]?js)?$/.test(basename(runner)) || /zx[\\/]build[\\/]cli\.[cm]?js$/.test(runner);
  if (!viaZx) return argv.slice(2);
  // zx [zx options] <script> [script args]: zx stops parsing at the script
  const i = argv.findIndex((a, idx) => idx >= 2 && /\.[cm]?[jt]sx?$/.test(a));
  return i === -1 ? argv.slice(2) : argv.slice(i + 1);
}

export interface RunOptions {
  argv?: readonly string[];
  /** logger options derived from the parsed flags (default: quiet/json flags if the spec has them) */
  logger?: (args: ParsedArgs) => Logger;
}

/** run a command and return its exit code (testable: never exits the process) */
export async function runCommand(spec: CommandSpec, fn: CommandFn, opts: RunOptions = {}): Promise<number> {
  const argv = opts.argv ?? scriptArgv();
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, spec);
  } catch (err) {
    process.stderr.write(`error: ${errorMessage(err)}\n`);
    if (isToolkitError(err) && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    return isToolkitError(err) ? err.exitCode : EXIT_USAGE;
  }
  if (args.values.help) {
    process.stdout.write(helpText(spec));
    return EXIT_OK;
  }
  // a schedule's run (its unit or cron line sets LAZYFLOW_TRUST_CHECK=1): refuse to run as root what others can write
  if (process.env[TRUST_CHECK_ENV] === '1') {
    const envFile = typeof args.values.config === 'string' ? args.values.config : undefined;
    const problems = trustProblems({ nodeBin: process.execPath, checkout: REPO_ROOT, envFile });
    if (problems.length) {
      for (const p of problems) process.stderr.write(`error: refusing to run as a schedule: ${p.path} is ${p.why}\n`);
      process.stderr.write(`hint: chown root:root and chmod go-w each path above (e.g. chmod go-w ${problems[0]!.path}), then wait for the next run\n`);
      return EXIT_USAGE;
    }
  }
  const log =
    opts.logger?.(args) ??
    createLogger({ quiet: sharedValues(args.values).quiet, json: sharedValues(args.values).json, op: spec.name.replace(/\.mts$/, '') });
  try {
    const code = await fn(args, log);
    return typeof code === 'number' ? code : EXIT_OK;
  } catch (err) {
    if (isToolkitError(err)) {
      log.error(err.message);
      if (err.hint) log.error(`next: ${err.hint}`);
      return err.exitCode;
    }
    // a bug or an unexpected failure (e.g. a command's output): say so, with the stack
    log.error(`unexpected error: ${errorMessage(err)}`);
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT_FAILED;
  }
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (!stream.writableNeedDrain) return resolve();
    stream.once('drain', () => resolve());
  });
}

/** run a command as the process: exits with its code. SIGINT/SIGTERM exit 130/143 (locks are released on exit). */
export async function runMain(spec: CommandSpec, fn: CommandFn, opts: RunOptions = {}): Promise<never> {
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\n${spec.name}: interrupted by ${sig}\n`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const code = await runCommand(spec, fn, opts);
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
}
