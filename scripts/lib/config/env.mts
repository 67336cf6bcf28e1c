// The operator's env file (.env.prod, mode 600) is the one source of configuration: the toolkit
// reads it here and passes the same file to `docker compose --env-file`.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import { ConfigError } from '../cli/errors.mts';
import { stateLayout, type StateLayout } from './state.mts';
import { parseProbesEnv, PROBES_ENV_FILE, withProbes } from '../contract/probes.mts';

/** repository root: scripts/lib/../.. (where docker-compose.yml lives) */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface OpsEnv {
  /** absolute path of the env file */
  file: string;
  /** same as file: what compose gets as --env-file */
  envFile: string;
  /** file mode bits (e.g. 0o600) */
  mode: number;
  values: Record<string, string>;
  projectDir: string;
  /** COMPOSE_FILE split on ':' and resolved against projectDir; empty = compose's default file */
  composeFiles: string[];
  project: string;
  stateDir: string;
  layout: StateLayout;
  domain: string;
  appUrl: string;
  appImage: string;
  appTag: string;
  /** STATE_DIR/probes.env when it exists: READY_PATH / HEALTHCHECK_PATH as the contract gate found them,
   * read by compose before the env file (whose own setting wins) */
  probesEnvFile?: string;
  /** keys of `values` filled from probes.env because the env file leaves them unset */
  recordedProbeKeys?: string[];
}

export interface LoadOpsEnvOptions {
  require?: string[];
  /** default: the repository root */
  projectDir?: string;
}

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PROJECT_RE = /^[a-z0-9][a-z0-9_-]*$/;

export function parseEnvText(text: string, file: string): Record<string, string> {
  // dotenv silently skips lines it cannot parse; an operator typo must not vanish, so check first
  const lines = text.split(/\r?\n/);
  let inQuote: string | null = null;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (inQuote) {
      if (line.endsWith(inQuote)) inQuote = null;
      return;
    }
    if (!line || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([^=\s]*)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      throw new ConfigError(`${file}:${i + 1}: expected KEY=value, got "${line.slice(0, 40)}"`, {
        file,
        hint: `fix line ${i + 1} of ${file}`,
      });
    }
    if (!KEY_RE.test(m[1])) {
      throw new ConfigError(`${file}:${i + 1}: invalid key name "${m[1]}" (letters, digits and _ only)`, {
        file,
        key: m[1],
        hint: `rename the key on line ${i + 1} of ${file}`,
      });
    }
    const v = m[2];
    const q = v[0];
    if ((q === '"' || q === "'" || q === '`') && !(v.length > 1 && v.slice(1).includes(q))) inQuote = q;
  });
  return dotenv.parse(text);
}

export function loadOpsEnv(file: string, opts: LoadOpsEnvOptions = {}): OpsEnv {
  if (!file) throw new ConfigError('no env file given', { hint: 'pass --config .env.prod' });
  const abs = resolve(file);
  let text: string;
  let mode: number;
  try {
    const st = statSync(abs);
    if (!st.isFile()) throw new ConfigError(`env file ${abs} is not a regular file`, { file: abs });
    mode = st.mode & 0o777;
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(`env file ${abs} does not exist`, {
        file: abs,
        // absolute paths: the operator may run the script from anywhere, and the example lives in the checkout
        hint: `create it: cp ${resolve(opts.projectDir ?? REPO_ROOT, '.env.prod.example')} ${abs} && chmod 600 ${abs}, then fill in the values (RUNBOOK.md, VPS preparation)`,
      });
    }
    throw new ConfigError(`cannot read env file ${abs}: ${(err as Error).message}`, { file: abs, cause: err });
  }
  return opsEnvFromText(abs, text, mode, opts);
}

/** The OpsEnv of an env file's text (setup's plan, before the file exists): as loadOpsEnv reads it. */
export function opsEnvFromText(file: string, text: string, mode: number, opts: LoadOpsEnvOptions = {}): OpsEnv {
  const abs = resolve(file);
  const values = parseEnvText(text, abs);

  for (const key of opts.require ?? []) {
    if (values[key] === undefined || values[key].trim() === '') {
      throw new ConfigError(`${key} is missing or empty in ${abs}`, {
        file: abs,
        key,
        hint: `add ${key}=... to ${abs}`,
      });
    }
  }

  const projectDir = resolve(opts.projectDir ?? REPO_ROOT);
  const project = values.COMPOSE_PROJECT_NAME || 'lazyflow';
  if (!PROJECT_RE.test(project)) {
    throw new ConfigError(`COMPOSE_PROJECT_NAME "${project}" is invalid in ${abs}: lowercase letters, digits, - and _ only`, {
      file: abs,
      key: 'COMPOSE_PROJECT_NAME',
      hint: `set COMPOSE_PROJECT_NAME=lazyflow in ${abs}`,
    });
  }
  // relative paths are relative to the compose project directory, exactly as compose reads them
  const stateDir = resolve(projectDir, values.STATE_DIR || './.state');
  const composeFiles = (values.COMPOSE_FILE ?? '')
    .split(':')
    .map((f) => f.trim())
    .filter(Boolean)
    .map((f) => resolve(projectDir, f));
  const domain = values.DOMAIN || 'localhost';
  // the probes the contract gate chose from what the app answers, where the env file says nothing
  const probesEnvFile = join(stateDir, PROBES_ENV_FILE);
  let probesText: string | null = null;
  try {
    probesText = readFileSync(probesEnvFile, 'utf8');
  } catch {
    probesText = null;
  }
  const effective = withProbes(values, parseProbesEnv(probesText));
  const recordedProbeKeys = ['READY_PATH', 'HEALTHCHECK_PATH'].filter((k) => !(values[k] ?? '').trim() && effective[k]);
  return {
    file: abs,
    envFile: abs,
    mode,
    values: effective,
    ...(probesText !== null ? { probesEnvFile, recordedProbeKeys } : {}),
    projectDir,
    composeFiles,
    project,
    stateDir,
    layout: stateLayout(stateDir),
    domain,
    appUrl: values.APP_URL || `https://${domain}`,
    appImage: values.APP_IMAGE || 'lazyflow-app',
    appTag: values.APP_TAG || 'local',
  };
}
