// Which paths the stack probes: the env file's when set, else what the app answered in the contract
// sandbox, else the stack's defaults. An adopter sets nothing the toolkit can find out.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import { chooseProbes, probesEnvText, withProbes, type ProbeObs } from '../../scripts/lib/contract/probes.mts';
import { loadOpsEnv } from '../../scripts/lib/config/env.mts';
import { composeArgs, swapCommands } from '../../scripts/lib/commands/compose.mts';
import { explicitValues } from '../../scripts/lib/release/contract-gate.mts';

type Row = [what: string, values: Record<string, string>, seen: ProbeObs, ready: string, healthcheck: string, sources: string, recorded?: Record<string, string>];
const rows: Row[] = [
  ['reference app (answers /ready and /health/write), nothing set', {}, { ready: 200, healthWrite: 200 }, '/ready', '/health/write', 'observed observed'],
  ['Hono app with /health only, nothing set', {}, { ready: 404, healthWrite: 404 }, '/health', '/health', 'observed observed'],
  ['readiness but no write probe', {}, { ready: 200, healthWrite: 404 }, '/ready', '/health', 'observed observed'],
  ['app that answers /ready with 503 while serving', {}, { ready: 503, healthWrite: 404 }, '/health', '/health', 'observed observed'],
  ['no answer at all (0): /health', {}, { ready: 0, healthWrite: 0 }, '/health', '/health', 'observed observed'],
  ['explicit setting wins over what the app answers', { READY_PATH: '/health', HEALTHCHECK_PATH: '/health' }, { ready: 200, healthWrite: 200 }, '/health', '/health', 'env env'],
  ['explicit custom path', { READY_PATH: '/live/ready' }, { ready: 404, healthWrite: 200 }, '/live/ready', '/health/write', 'env observed'],
  ['blank setting counts as unset', { READY_PATH: '  ' }, { ready: 404 }, '/health', '/health/write', 'observed default'],
  ['nothing observed (the app never answered): the stack defaults', {}, {}, '/ready', '/health/write', 'default default'],
  // sticky: Caddy keeps the READY_PATH it started with, a rollback needs the probes its release passed with
  ['a recorded probe stays although the app now answers /ready', {}, { ready: 200, healthWrite: 200 }, '/health', '/health', 'recorded recorded', { READY_PATH: '/health', HEALTHCHECK_PATH: '/health' }],
  ['a recorded write probe stays (the gate then refuses a release without it, naming the key)', {}, { healthWrite: 404 }, '/ready', '/health/write', 'recorded recorded', { READY_PATH: '/ready', HEALTHCHECK_PATH: '/health/write' }],
  ['the env file wins over the record', { HEALTHCHECK_PATH: '/health' }, {}, '/ready', '/health', 'recorded env', { READY_PATH: '/ready', HEALTHCHECK_PATH: '/health/write' }],
];

describe('stack probes', () => {
  it.each(rows)('%s', (_what, values, seen, ready, hc, sources, recorded) => {
    const p = chooseProbes(values, seen, recorded);
    expect(`${p.READY_PATH.value} ${p.HEALTHCHECK_PATH.value}`).toBe(`${ready} ${hc}`);
    expect(`${p.READY_PATH.source} ${p.HEALTHCHECK_PATH.source}`).toBe(sources);
  });
  it('the recorded probes fill only what the env file leaves unset', () => {
    expect(withProbes({ READY_PATH: '/r' }, { READY_PATH: '/health', HEALTHCHECK_PATH: '/health' })).toEqual({ READY_PATH: '/r', HEALTHCHECK_PATH: '/health' });
    expect(withProbes({}, undefined)).toEqual({});
  });
  it('the file compose reads holds both keys', () => {
    expect(probesEnvText(chooseProbes({}, { ready: 404, healthWrite: 404 }))).toMatch(/\nREADY_PATH=\/health\nHEALTHCHECK_PATH=\/health\n$/);
  });
});

describe('the recorded probes reach the toolkit and compose; the env file still wins', () => {
  const setup = (envText: string, probes: string | null) => {
    const dir = mkdtempSync(join(tmpdir(), 'lzf-probes-'));
    const state = join(dir, 'state');
    mkdirSync(state);
    if (probes !== null) writeFileSync(join(state, 'probes.env'), probes);
    const file = join(dir, 'env.prod');
    writeFileSync(file, `STATE_DIR=${state}\n${envText}`, { mode: 0o600 });
    return { env: loadOpsEnv(file), state, file };
  };
  it.each<[string, string, string | null, Record<string, string | undefined>, string[] | undefined]>([
    ['no record: the env file as it is', '', null, { READY_PATH: undefined, HEALTHCHECK_PATH: undefined }, undefined],
    ['a record fills what the env file leaves unset', '', 'READY_PATH=/health\nHEALTHCHECK_PATH=/health\n', { READY_PATH: '/health', HEALTHCHECK_PATH: '/health' }, ['READY_PATH', 'HEALTHCHECK_PATH']],
    ['a key set in the env file wins', 'READY_PATH=/ready\n', 'READY_PATH=/health\nHEALTHCHECK_PATH=/health\n', { READY_PATH: '/ready', HEALTHCHECK_PATH: '/health' }, ['HEALTHCHECK_PATH']],
    ['a record that is not a plain path is ignored', '', 'READY_PATH=/x;rm -rf /\nHEALTHCHECK_PATH=health\nOTHER=/x\n', { READY_PATH: undefined, HEALTHCHECK_PATH: undefined, OTHER: undefined }, []],
  ])('%s', (_what, envText, probes, want, recorded) => {
    const { env } = setup(envText, probes);
    for (const [k, v] of Object.entries(want)) expect(env.values[k], k).toBe(v);
    expect(env.recordedProbeKeys).toEqual(recorded);
    // the gate decides anew from what the env file itself says
    const explicit = explicitValues(env);
    for (const k of recorded ?? []) expect(explicit[k]).toBeUndefined();
  });
  it('compose reads the record before the env file (a later --env-file wins in compose)', () => {
    const { env, state, file } = setup('', 'READY_PATH=/health\n');
    const a = composeArgs(env, 'ps');
    expect(a.slice(0, 7)).toEqual(['compose', '--project-directory', env.projectDir, '--env-file', join(state, 'probes.env'), '--env-file', file]);
    expect(composeArgs({ ...env, probesEnvFile: undefined }, 'ps').filter((x) => x === '--env-file')).toHaveLength(1);
    // the swap's commands too (the healthcheck and Caddy's READY_PATH are set when compose creates them)
    for (const argv of Object.values(swapCommands(env))) expect(argv.slice(3, 5)).toEqual(['--env-file', join(state, 'probes.env')]);
  });
});
