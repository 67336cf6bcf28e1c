import { describe, it, expect } from 'vitest';
import { appRunArgs, networkCreateArgs, probeRunArgs, sandboxNames, telegramStubRunArgs, TELEGRAM_STUB_ALIAS } from '../../scripts/lib/commands/contract.mts';
import { sandboxEnv } from '../../scripts/lib/contract/check.mts';

describe('contract checker commands', () => {
  const n = sandboxNames('ab12');
  it('the app runs under the production restrictions, on an internal network, nothing published', () => {
    const a = appRunArgs({ name: n.app, network: n.network, image: 'x:1', dataDir: '/s/data', uploadsDir: '/s/uploads', envFile: '/s/app.env' });
    expect(a).toEqual(expect.arrayContaining(['--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--env-file', '/s/app.env']));
    expect(a.join(' ')).toContain('type=bind,source=/s/data,target=/app/data');
    expect(a.join(' ')).toContain('--tmpfs /tmp:size=64m,mode=1777');
    expect(a).not.toContain('-p');
    expect(a).not.toContain('--publish');
    expect(a.at(-1)).toBe('x:1');
    // always as the app's uid, whatever USER the image names (issue 17: the sandbox runs an untrusted image)
    expect(a.join(' ')).toContain('--user 1000:1000');
    expect(networkCreateArgs(n.network)).toContain('--internal');
  });
  it('the probe reaches the app by its container name, from the Bun image', () => {
    const p = probeRunArgs({ name: n.probe, network: n.network, probeImage: 'oven/bun:1.4.5-slim', mode: 'boot', appHost: n.app, port: '3000', deadlineMs: 5000 });
    expect(p).toEqual(expect.arrayContaining(['--entrypoint', 'bun', 'oven/bun:1.4.5-slim', '-e', `PROBE_BASE=http://${n.app}:3000`, '-e', 'PROBE_MODE=boot', '-e', 'PROBE_READY=/ready']));
    expect(probeRunArgs({ name: n.probe, network: n.network, probeImage: 'b', mode: 'drain', appHost: n.app, port: '3000', readyPath: '/live/ready', deadlineMs: 5000 })).toEqual(expect.arrayContaining(['-e', 'PROBE_READY=/live/ready']));
    // nobody, unless it reads the app's database: then the app's uid, never root
    expect(p.join(' ')).toContain('--user 65534:65534');
    const db = probeRunArgs({ name: n.probe, network: n.network, probeImage: 'b', mode: 'db', appHost: 'none', port: '3000', deadlineMs: 5000, dataDir: '/s/data' });
    expect(db.join(' ')).toContain('--user 1000:1000');
    expect(db.join(' ')).toContain('--network none');
    expect(db.join(' ')).toContain('type=bind,source=/s/data,target=/app/data');
    expect(db).toEqual(expect.arrayContaining(['--read-only', '--cap-drop', 'ALL']));
  });
  it('a polling bot\'s stub Bot API: on the sandbox network as telegram-stub, hardened, as nobody, from the probe image, labelled for the sweep', () => {
    const t = telegramStubRunArgs({ name: n.telegram, network: n.network, probeImage: 'oven/bun:1.4.5-slim' });
    expect(n.telegram).toBe('lzf-check-ab12-telegram');
    expect(t.slice(0, 4)).toEqual(['run', '-d', '--name', n.telegram]);
    expect(t).toEqual(expect.arrayContaining(['--network', n.network, '--network-alias', TELEGRAM_STUB_ALIAS, '--label', 'lazyflow.contract-check=1', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '65534:65534', '--entrypoint', 'bun', 'oven/bun:1.4.5-slim']));
    expect(t).not.toContain('-p');
    expect(t.at(-2)).toBe('-e');
    expect(t.at(-1)).toMatch(/getupdates/);
  });
  it('sandbox env: the contract paths, the app keys from the env file (secrets as placeholders), toolkit keys left out', () => {
    const e = sandboxEnv({ MINI_APP_URL: 'https://m.example', GOOGLE_OAUTH_STATE_SECRET: 's', BOT_TOKEN: '1:x', STATE_DIR: '/srv', RESTIC_REPOSITORY: 'r', DB_PATH: '/elsewhere.db' });
    expect(e).toMatchObject({ MINI_APP_URL: 'https://m.example', DB_PATH: '/app/data/lazyflow.db', PORT: '3000', APP_URL: 'https://localhost' });
    expect(e.GOOGLE_OAUTH_STATE_SECRET).toMatch(/^[a-z]$/);
    expect(e.BOT_TOKEN).not.toBe('1:x');
    for (const k of ['STATE_DIR', 'RESTIC_REPOSITORY']) expect(e[k]).toBeUndefined();
    // an app key the env file lacks is absent in the sandbox too, as in production (no stand-in value)
    expect(sandboxEnv({}).MINI_APP_URL).toBeUndefined();
  });
});
