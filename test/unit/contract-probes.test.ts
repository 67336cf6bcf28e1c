// Which paths the stack probes: the env file's when set, else what the app answered in the contract
// sandbox, else the stack's defaults. An adopter sets nothing the toolkit can find out.
import { describe, it, expect } from 'vitest';
import { chooseProbes, probesEnvText, withProbes, type ProbeObs } from '../../scripts/lib/contract/probes.mts';

type Row = [what: string, values: Record<string, string>, seen: ProbeObs, ready: string, healthcheck: string, sources: string];
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
];

describe('stack probes', () => {
  it.each(rows)('%s', (_what, values, seen, ready, hc, sources) => {
    const p = chooseProbes(values, seen);
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
