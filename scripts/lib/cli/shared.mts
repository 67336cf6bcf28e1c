// The options every toolkit script shares, defined once: --config, --json, --quiet, --dry-run.
// Each has one name, one alias and one meaning in every script; a script may only add a note
// saying where it applies ("with --list"). Their values are typed from these specs (sharedValues),
// so no script retypes them with String()/Boolean().
import type { ArgValues, OptionSpec } from './args.mts';

/** The operator env file every toolkit script reads (it is also the compose --env-file). */
export const CONFIG_OPTION = {
  name: 'config',
  type: 'string',
  default: '.env.prod',
  arg: '<file>',
  describe: 'operator env file, mode 600 (STATE_DIR, COMPOSE_PROJECT_NAME, ...; also the compose --env-file)',
} as const satisfies OptionSpec;

export const JSON_OPTION = {
  name: 'json',
  type: 'boolean',
  describe: 'print the result as JSON on stdout (human lines go to stderr)',
} as const satisfies OptionSpec;

export const QUIET_OPTION = {
  name: 'quiet',
  type: 'boolean',
  alias: 'q',
  describe: 'print errors only, for cron (STATE_DIR/logs/ops.log still gets every line)',
} as const satisfies OptionSpec;

export const DRY_RUN_OPTION = {
  name: 'dry-run',
  type: 'boolean',
  alias: 'n',
  describe: 'print what would be done; change nothing',
} as const satisfies OptionSpec;

export const SHARED_OPTIONS = { config: CONFIG_OPTION, json: JSON_OPTION, quiet: QUIET_OPTION, dryRun: DRY_RUN_OPTION } as const;
type Shared = typeof SHARED_OPTIONS;

/** What an option's value is, from its spec: a boolean, or a string (always set when it has a default). */
type ValueOf<O extends OptionSpec> = O['type'] extends 'boolean' ? boolean : O extends { default: string } ? string : string | undefined;
export type SharedValues = { [K in keyof Shared]: ValueOf<Shared[K]> };

/**
 * One shared option with a note on where it applies in this script, e.g.
 * sharedOption('json', 'with --list'); the name, alias, type and meaning stay the shared ones.
 * `config` may take another default (demo's .env.local) and its own text for what the file holds.
 */
export function sharedOption(key: keyof Shared, note?: string, overrides: { default?: string | null; describe?: string } = {}): OptionSpec {
  const base: OptionSpec = { ...SHARED_OPTIONS[key] };
  if (overrides.default === null) delete base.default;
  else if (overrides.default !== undefined) base.default = overrides.default;
  const describe = overrides.describe ?? base.describe;
  return { ...base, describe: note ? `${describe}; ${note}` : describe };
}

/** The shared options' values, typed; an option the script does not define reads as its off value. */
export function sharedValues(v: ArgValues): SharedValues {
  const config = v[CONFIG_OPTION.name];
  return {
    config: typeof config === 'string' ? config : CONFIG_OPTION.default,
    json: v[JSON_OPTION.name] === true,
    quiet: v[QUIET_OPTION.name] === true,
    dryRun: v[DRY_RUN_OPTION.name] === true,
  };
}
