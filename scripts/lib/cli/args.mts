// Command-line parsing on top of minimist, strict: an unknown flag or a bad value is a
// UsageError (exit 2) before anything is touched. `--help` is always available.
import minimist from 'minimist';
import { EXIT_CODES_TEXT, UsageError } from './errors.mts';
import { CONFIG_OPTION } from './shared.mts';

export type OptionType = 'boolean' | 'string' | 'number';

export interface OptionSpec {
  name: string;
  type: OptionType;
  alias?: string;
  default?: boolean | string | number;
  describe: string;
  /** for string options: the allowed values */
  choices?: string[];
  /** placeholder shown in --help, e.g. <id|latest> */
  arg?: string;
}

/** The operator env file every toolkit script reads: the shared --config (cli/shared.mts). */
export const ENV_FILE_OPTION: OptionSpec = CONFIG_OPTION;

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string | string[];
  options: OptionSpec[];
  /** extra text printed after the options (examples, notes) */
  details?: string;
  /** exit status documentation; the standard 0/1/2 text when omitted */
  exitCodes?: string;
  /** how many positional arguments are accepted (default 0) */
  maxPositionals?: number;
}

export type ArgValues = Record<string, boolean | string | number | undefined>;

export interface ParsedArgs {
  values: ArgValues;
  positionals: string[];
}

const HELP_OPTION: OptionSpec = { name: 'help', type: 'boolean', alias: 'h', describe: 'show this help and exit' };

function allOptions(spec: CommandSpec): OptionSpec[] {
  return spec.options.some((o) => o.name === 'help') ? spec.options : [...spec.options, HELP_OPTION];
}

function flagName(o: OptionSpec): string {
  return `--${o.name}`;
}

export function parseArgs(argv: readonly string[], spec: CommandSpec): ParsedArgs {
  const options = allOptions(spec);
  // minimist reads --no-<x> as "x = false": such a name could never be set
  const bad = options.find((o) => o.name.startsWith('no-'));
  if (bad) throw new Error(`${spec.name}: option name --${bad.name} cannot start with "no-" (use --skip-... instead)`);
  const byName = new Map<string, OptionSpec>();
  for (const o of options) {
    byName.set(o.name, o);
    if (o.alias) byName.set(o.alias, o);
  }
  const unknown: string[] = [];
  const parsed = minimist([...argv], {
    boolean: options.filter((o) => o.type === 'boolean').map((o) => o.name),
    // numbers are parsed as strings and validated here, so "--keep-daily abc" is an error, not NaN
    string: options.filter((o) => o.type !== 'boolean').map((o) => o.name),
    alias: Object.fromEntries(options.filter((o) => o.alias).map((o) => [o.name, o.alias as string])),
    '--': true,
    default: Object.fromEntries(options.filter((o) => o.type === 'boolean').map((o) => [o.name, (o.default as boolean | undefined) ?? false])),
    unknown: (arg: string) => {
      if (arg.startsWith('--')) {
        const name = arg.slice(2).split('=')[0];
        if (!byName.has(name) && !(name.startsWith('no-') && byName.get(name.slice(3))?.type === 'boolean')) unknown.push(arg.split('=')[0]);
      } else if (/^-[^-\d]/.test(arg)) {
        // a cluster of short flags: -yq
        for (const ch of arg.slice(1).split('=')[0]) if (!byName.has(ch)) unknown.push(`-${ch}`);
      }
      return true;
    },
  });
  if (unknown.length) {
    // Node itself reads --env-file anywhere on its command line, so the toolkit names its env file --config
    const renamed = unknown.includes('--env-file') && byName.has('config');
    throw new UsageError(`${spec.name}: unknown option ${unknown.join(', ')}`, {
      hint: renamed ? `the env file option is --config (Node takes --env-file for itself): ${spec.name} --config .env.prod` : `see: ${spec.name} --help`,
    });
  }

  const values: ArgValues = {};
  for (const o of options) {
    let raw: unknown = parsed[o.name];
    // minimist leaves absent string options out; booleans get their default
    const given = Object.prototype.hasOwnProperty.call(parsed, o.name);
    if (Array.isArray(raw)) {
      if (o.type === 'boolean') raw = raw[raw.length - 1];
      else throw new UsageError(`${spec.name}: ${flagName(o)} given more than once`, { hint: `see: ${spec.name} --help` });
    }
    if (o.type === 'boolean') {
      values[o.name] = Boolean(raw);
      continue;
    }
    if (!given) {
      values[o.name] = o.default;
      continue;
    }
    const str = typeof raw === 'string' ? raw : raw === undefined || raw === null ? '' : String(raw);
    if (str === '') {
      throw new UsageError(`${spec.name}: ${flagName(o)} needs a value${o.arg ? ` ${o.arg}` : ''}`, { hint: `see: ${spec.name} --help` });
    }
    if (o.type === 'number') {
      const n = Number(str);
      if (!Number.isFinite(n) || !/^-?\d+(\.\d+)?$/.test(str.trim())) {
        throw new UsageError(`${spec.name}: ${flagName(o)} expects a number, got "${str}"`, { hint: `see: ${spec.name} --help` });
      }
      values[o.name] = n;
      continue;
    }
    if (o.choices && !o.choices.includes(str)) {
      throw new UsageError(`${spec.name}: ${flagName(o)} must be one of ${o.choices.join(', ')}, got "${str}"`, { hint: `see: ${spec.name} --help` });
    }
    values[o.name] = str;
  }

  const positionals = [...parsed._.map(String), ...((parsed['--'] as string[] | undefined) ?? [])];
  const max = spec.maxPositionals ?? 0;
  if (positionals.length > max && !values.help) {
    throw new UsageError(
      `${spec.name}: unexpected argument${positionals.length - max > 1 ? 's' : ''} ${positionals.slice(max).map((p) => JSON.stringify(p)).join(' ')}`,
      { hint: `see: ${spec.name} --help` },
    );
  }
  return { values, positionals };
}

export function helpText(spec: CommandSpec): string {
  const options = allOptions(spec);
  const usage = Array.isArray(spec.usage) ? spec.usage : [spec.usage];
  const lines: string[] = [];
  lines.push(`${spec.name}: ${spec.summary}`, '', 'Usage:');
  for (const u of usage) lines.push(`  ${u}`);
  lines.push('', 'Options:');
  const left = options.map((o) => {
    const alias = o.alias ? `-${o.alias}, ` : '    ';
    const arg = o.type === 'boolean' ? '' : ` ${o.arg ?? (o.type === 'number' ? '<n>' : '<value>')}`;
    return `${alias}--${o.name}${arg}`;
  });
  const width = Math.max(...left.map((l) => l.length)) + 2;
  options.forEach((o, i) => {
    let d = o.describe;
    if (o.choices) d += ` (one of: ${o.choices.join(', ')})`;
    if (o.default !== undefined && o.default !== false && o.default !== '') d += ` (default: ${o.default})`;
    lines.push(`  ${left[i].padEnd(width)}${d}`);
  });
  if (spec.details) lines.push('', spec.details.trimEnd());
  lines.push('', (spec.exitCodes ?? EXIT_CODES_TEXT).trimEnd());
  return lines.join('\n') + '\n';
}
