import { describe, expect, it } from 'vitest';
import { helpText, parseArgs, type CommandSpec } from '../../scripts/lib/cli/args.mts';
import { UsageError } from '../../scripts/lib/cli/errors.mts';

const spec: CommandSpec = {
  name: 'backup.mts',
  summary: 'take a verified backup',
  usage: 'npx zx scripts/backup.mts --config .env.prod [options]',
  options: [
    { name: 'config', type: 'string', arg: '<file>', describe: 'operator env file', default: '.env.prod' },
    { name: 'quiet', type: 'boolean', alias: 'q', describe: 'errors only' },
    { name: 'yes', type: 'boolean', alias: 'y', describe: 'do not ask' },
    { name: 'keep-daily', type: 'number', describe: 'daily backups to keep' },
    { name: 'reason', type: 'string', choices: ['cron', 'manual'], default: 'manual', describe: 'why' },
  ],
};

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('parseArgs', () => {
  it('applies defaults when nothing is given', () => {
    expect(parseArgs([], spec)).toEqual({
      values: { 'config': '.env.prod', quiet: false, yes: false, 'keep-daily': undefined, reason: 'manual', help: false },
      positionals: [],
    });
  });

  it('parses strings, numbers, booleans, aliases and clusters', () => {
    const { values } = parseArgs(['--config', 'x.env', '--keep-daily=7', '-qy', '--reason', 'cron'], spec);
    expect(values).toMatchObject({ 'config': 'x.env', 'keep-daily': 7, quiet: true, yes: true, reason: 'cron' });
  });

  it('accepts --no-<flag> for booleans', () => {
    expect(parseArgs(['--no-quiet'], spec).values.quiet).toBe(false);
  });

  it('rejects an unknown flag with exit code 2 and a hint', () => {
    const err = usageError(() => parseArgs(['--keep-dialy', '3'], spec));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('--keep-dialy');
    expect(err.hint).toContain('--help');
  });

  it('rejects an unknown short flag inside a cluster', () => {
    expect(usageError(() => parseArgs(['-qz'], spec)).message).toContain('-z');
  });

  it('rejects a non-number for a number option', () => {
    expect(usageError(() => parseArgs(['--keep-daily', 'seven'], spec)).message).toMatch(/--keep-daily expects a number, got "seven"/);
    expect(usageError(() => parseArgs(['--keep-daily', '7x'], spec)).message).toMatch(/expects a number/);
  });

  it('rejects a string option without a value', () => {
    expect(usageError(() => parseArgs(['--config'], spec)).message).toMatch(/--config needs a value <file>/);
    expect(usageError(() => parseArgs(['--config', '--yes'], spec)).message).toMatch(/--config needs a value/);
  });

  it('rejects a value outside the choices', () => {
    expect(usageError(() => parseArgs(['--reason', 'whim'], spec)).message).toMatch(/one of cron, manual/);
  });

  it('rejects a repeated string option', () => {
    expect(usageError(() => parseArgs(['--reason', 'cron', '--reason', 'manual'], spec)).message).toMatch(/more than once/);
  });

  it('rejects positionals unless allowed', () => {
    expect(usageError(() => parseArgs(['oops'], spec)).message).toMatch(/unexpected argument "oops"/);
    expect(parseArgs(['a', 'b'], { ...spec, maxPositionals: 2 }).positionals).toEqual(['a', 'b']);
  });

  it('always knows --help and -h', () => {
    expect(parseArgs(['--help'], spec).values.help).toBe(true);
    expect(parseArgs(['-h'], spec).values.help).toBe(true);
  });
});

describe('helpText', () => {
  const text = helpText(spec);
  it('lists usage, every option with its argument, default and choices', () => {
    expect(text).toContain('npx zx scripts/backup.mts --config .env.prod [options]');
    expect(text).toMatch(/--config <file>\s+operator env file \(default: \.env\.prod\)/);
    expect(text).toMatch(/-q, --quiet\s+errors only/);
    expect(text).toMatch(/--keep-daily <n>/);
    expect(text).toMatch(/one of: cron, manual/);
    expect(text).toMatch(/-h, --help/);
  });
  it('documents the exit codes', () => {
    expect(text).toMatch(/0\s+ok/);
    expect(text).toMatch(/1\s+a check or step failed/);
    expect(text).toMatch(/2\s+usage or config error/);
  });
  it('uses the command\'s own exit status text when given', () => {
    expect(helpText({ ...spec, exitCodes: 'Exit status:\n  0 fine\n  3 special' })).toContain('3 special');
  });
});

describe('spec checks', () => {
  it('refuses an option named no-<x> (minimist would read it as x=false)', () => {
    expect(() => parseArgs([], { ...spec, options: [{ name: 'no-smoke', type: 'boolean', describe: 'x' }] })).toThrow(/cannot start with "no-"/);
  });
});
