// The toolkit's drain: only for an app without a readiness path; the flag exists exactly while the
// stop runs (after Caddy had time to check), is gone afterwards whatever the stop did, and names
// its owner so recovery can tell a stale one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DRAIN_SETTLE_MS, drainFlagFile, drainStatus, readDrainFlag, toolkitDrains, withDrain } from '../../scripts/lib/docker/drain.mts';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });
const env = (values: Record<string, string>) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lzf-drain-'));
  dirs.push(root);
  return { layout: { root }, values };
};
const quiet = { info: () => {} };

describe('toolkitDrains', () => {
  it.each([
    [{}, false],
    [{ READY_PATH: '/ready' }, false],
    [{ READY_PATH: '' }, false],
    [{ READY_PATH: '/healthz/ready' }, false],
    [{ READY_PATH: '/health' }, true],
    // no Caddy to route around a polling bot
    [{ READY_PATH: '/health', BOT_SHAPE: 'polling' }, false],
  ])('%j -> %s', (values, want) => expect(toolkitDrains(values)).toBe(want));
});

describe('withDrain', () => {
  it('an app with a readiness path: no flag, no wait', async () => {
    const e = env({ READY_PATH: '/ready' });
    const t0 = performance.now();
    const seen = await withDrain(e, quiet, 'swap to v2', async () => fs.existsSync(drainFlagFile(e.layout)));
    expect(seen).toBe(false);
    expect(performance.now() - t0).toBeLessThan(DRAIN_SETTLE_MS);
  });

  it('READY_PATH=/health: the flag exists from the settle wait through the stop, owned by this process, then is gone', async () => {
    const e = env({ READY_PATH: '/health' });
    const t0 = performance.now();
    const during = await withDrain(e, quiet, 'swap to v2', async () => ({ waited: performance.now() - t0, flag: readDrainFlag(e.layout), status: drainStatus(e.layout), mode: fs.statSync(drainFlagFile(e.layout)).mode & 0o777 }));
    expect(during.status).toMatchObject({ what: 'swap to v2', ownerAlive: true });
    expect(during.waited).toBeGreaterThanOrEqual(DRAIN_SETTLE_MS - 5);
    expect(during.flag).toMatchObject({ pid: process.pid, what: 'swap to v2' });
    expect(during.flag!.pidStart).toBeTruthy();
    // Caddy (root in its container without CAP_DAC_OVERRIDE) must see it whoever runs the toolkit
    expect(during.mode).toBe(0o644);
    expect(fs.existsSync(drainFlagFile(e.layout))).toBe(false);
  });

  it('a stop that throws still removes the flag, and the error comes through', async () => {
    const e = env({ READY_PATH: '/health' });
    await expect(withDrain(e, quiet, 'restore', async () => { throw new Error('compose stop failed'); })).rejects.toThrow('compose stop failed');
    expect(readDrainFlag(e.layout)).toBeNull();
  });

  it('a flag left by a process that died is recognisably ownerless', () => {
    const e = env({});
    fs.mkdirSync(path.dirname(drainFlagFile(e.layout)), { recursive: true });
    fs.writeFileSync(drainFlagFile(e.layout), JSON.stringify({ pid: 2 ** 22 + 7, since: 'x', what: 'swap to v2' }));
    expect(drainStatus(e.layout)).toEqual({ what: 'swap to v2', since: 'x', ownerAlive: false });
    // our own pid with another start time: a reused pid, not the owner
    fs.writeFileSync(drainFlagFile(e.layout), JSON.stringify({ pid: process.pid, pidStart: '1', since: 'x', what: 'restore' }));
    expect(drainStatus(e.layout)?.ownerAlive).toBe(false);
    fs.writeFileSync(drainFlagFile(e.layout), '{torn');
    expect(drainStatus(e.layout)?.ownerAlive).toBe(false);
  });
});
