// Which paths the stack probes (Caddy's readiness poll READY_PATH, Docker's healthcheck
// HEALTHCHECK_PATH): what the env file says when it says it, else what an earlier release recorded,
// else what the app answered in the contract sandbox, else the stack's defaults. An adopter sets
// nothing the toolkit can find out. The record is sticky on purpose: Caddy reads READY_PATH when its
// container starts (a swap only reloads it), and a rollback must find the probes its release passed
// with; a later release that no longer answers a recorded path is refused by the gate (healthcheck)
// or warned about (readiness), naming the key to set. Pure: the check observes, the gate records.

export type ProbeKey = 'READY_PATH' | 'HEALTHCHECK_PATH';
export type ProbeSource = 'env' | 'recorded' | 'observed' | 'default';

export interface ProbeChoice {
  value: string;
  source: ProbeSource;
}

export type StackProbes = Record<ProbeKey, ProbeChoice>;

/** The stack's defaults (docker-compose.yml, docker/caddy/Caddyfile): the reference app's paths. */
export const PROBE_DEFAULTS: Record<ProbeKey, string> = { READY_PATH: '/ready', HEALTHCHECK_PATH: '/health/write' };

/** What the contract sandbox saw: the HTTP status of GET /ready and GET /health/write (absent: not asked, 0: no answer). */
export interface ProbeObs {
  ready?: number;
  healthWrite?: number;
}

/**
 * One row per case in test/unit/contract-probes.test.ts. An explicit env value wins, then the record of
 * an earlier pass; else a path the app answered with 200 is used; an app that did not answer it gets /health (the required tier: every app
 * has it); nothing observed keeps the stack's default.
 */
export function chooseProbes(values: Record<string, string | undefined>, seen: ProbeObs, recorded: Partial<Record<ProbeKey, string>> = {}): StackProbes {
  const pick = (key: ProbeKey, status: number | undefined): ProbeChoice => {
    const explicit = (values[key] ?? '').trim();
    if (explicit) return { value: explicit, source: 'env' };
    if (recorded[key]) return { value: recorded[key]!, source: 'recorded' };
    if (status === undefined) return { value: PROBE_DEFAULTS[key], source: 'default' };
    return { value: status === 200 ? PROBE_DEFAULTS[key] : '/health', source: 'observed' };
  };
  return { READY_PATH: pick('READY_PATH', seen.ready), HEALTHCHECK_PATH: pick('HEALTHCHECK_PATH', seen.healthWrite) };
}

/** The env values with the chosen probes filled in where the env file leaves them unset (what the stack then runs with). */
export function withProbes(values: Record<string, string>, probes: Partial<Record<ProbeKey, string>> | undefined): Record<string, string> {
  const out = { ...values };
  for (const k of ['READY_PATH', 'HEALTHCHECK_PATH'] as const) {
    if (!(out[k] ?? '').trim() && probes?.[k]) out[k] = probes[k]!;
  }
  return out;
}

/** The probes as KEY=value lines (the file compose reads before the operator's env file: an explicit setting there wins). */
export function probesEnvText(probes: StackProbes): string {
  return `# written by the contract gate from what the app answered (RUNBOOK "The app contract"); a key set in the env file wins\n${(['READY_PATH', 'HEALTHCHECK_PATH'] as const).map((k) => `${k}=${probes[k].value}`).join('\n')}\n`;
}

/** STATE_DIR/probes.env: the probes the last passing contract check chose (written by the gate, read by loadOpsEnv and compose). */
export const PROBES_ENV_FILE = 'probes.env';
const PATH_RE = /^\/[A-Za-z0-9._~/%?=&-]*$/;

/** Parse the probes file's text: only READY_PATH and HEALTHCHECK_PATH, only plain URL paths (anything else is ignored). */
export function parseProbesEnv(text: string | null): Partial<Record<ProbeKey, string>> {
  const out: Partial<Record<ProbeKey, string>> = {};
  for (const line of (text ?? '').split('\n')) {
    const m = /^(READY_PATH|HEALTHCHECK_PATH)=(.*)$/.exec(line.trim());
    if (m && PATH_RE.test(m[2])) out[m[1] as ProbeKey] = m[2];
  }
  return out;
}
