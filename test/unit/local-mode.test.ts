// Local mode (`npm run demo`): loopback only, and secrets of its own per install, never the public
// defaults: what a new demo env file holds and what an old one gets added.
import { describe, expect, it } from 'vitest';
import { parseEnvText } from '../../scripts/lib/config/env.mts';
import { generateLocalSecrets, localEnvText, missingLocalLines } from '../../scripts/lib/config/local-mode.mts';
import { LOCAL_DEFAULT_SECRET } from '../../scripts/lib/checks/preflight.mts';

describe('the demo env file', () => {
  it('publishes on 127.0.0.1 only and carries a webhook secret and a stand-in token of its own', () => {
    const v = parseEnvText(localEnvText({ httpsPort: 8443, httpPort: 8080, secrets: generateLocalSecrets() }), '.env.local');
    expect(v.PUBLISH_ADDRESS).toBe('127.0.0.1');
    expect(v.WEBHOOK_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(v.WEBHOOK_SECRET).not.toBe(LOCAL_DEFAULT_SECRET);
    expect(v.LOCAL_BOT_TOKEN).toMatch(/^\d+:[A-Za-z0-9_-]{30,}$/);
    expect(v.BOT_TOKEN).toBe('');
    expect(v.APP_URL).toBe('https://localhost:8443');
    expect(v.LAZYFLOW_SAFETY_NET).toBe('off');
  });

  it('two installs never share a secret', () => {
    const a = generateLocalSecrets();
    const b = generateLocalSecrets();
    expect(a.WEBHOOK_SECRET).not.toBe(b.WEBHOOK_SECRET);
    expect(a.LOCAL_BOT_TOKEN).not.toBe(b.LOCAL_BOT_TOKEN);
  });

  const s = { WEBHOOK_SECRET: 'w'.repeat(64), LOCAL_BOT_TOKEN: '42:t' };
  const table: [string, Record<string, string>, string[]][] = [
    ['a current file: nothing', { WEBHOOK_SECRET: 'x'.repeat(64), LOCAL_BOT_TOKEN: '1:a', PUBLISH_ADDRESS: '127.0.0.1', BOT_TOKEN: '', LAZYFLOW_SAFETY_NET: 'off' }, []],
    ['an old demo file: token, loopback, no recovery timer', { WEBHOOK_SECRET: 'x'.repeat(64), BOT_TOKEN: '' }, [`LOCAL_BOT_TOKEN=42:t`, 'PUBLISH_ADDRESS=127.0.0.1', 'LAZYFLOW_SAFETY_NET=off']],
    ['the public default secret is replaced', { WEBHOOK_SECRET: LOCAL_DEFAULT_SECRET, LOCAL_BOT_TOKEN: '1:a', PUBLISH_ADDRESS: '', LAZYFLOW_SAFETY_NET: 'off' }, [`WEBHOOK_SECRET=${'w'.repeat(64)}`]],
    ['an address the operator chose is kept (even empty)', { WEBHOOK_SECRET: 'x'.repeat(64), LOCAL_BOT_TOKEN: '1:a', PUBLISH_ADDRESS: '', LAZYFLOW_SAFETY_NET: 'auto' }, []],
  ];
  for (const [name, values, want] of table) it(name, () => expect(missingLocalLines(values, s, LOCAL_DEFAULT_SECRET)).toEqual(want));
});
