// Maintenance mode's rules (pure, with a fake clock) and its files (real, in a temporary STATE_DIR):
// on while maintenance-until holds a time ahead (Caddy's rule), `--for` ends by itself, the key only
// while on, and Telegram's 503s in the window are the window's.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FOREVER_UNIX, MAINTENANCE_KEY_HEADER, maintenanceCausedError, maintenanceFiles, maintenanceHeaders, maintenanceStatus, planOn, readMaintenance, turnOff, turnOn,
  type MaintenanceObs,
} from '../../scripts/lib/maintenance/maintenance.mts';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000);
const unix = (s: number) => String(Math.floor(T0 / 1000) + s);
const record = { since: at(0).toISOString(), until: at(1800).toISOString(), message: 'Upgrading' };

describe('maintenance status (what Caddy does, per request)', () => {
  const rows: { name: string; obs: MaintenanceObs; now: number; on: boolean; endedAt?: string }[] = [
    { name: 'never used', obs: { untilText: null, record: null, key: null }, now: 0, on: false },
    { name: 'on until --off', obs: { untilText: String(FOREVER_UNIX), record: { ...record, until: null }, key: 'k' }, now: 10 * 86400, on: true },
    { name: 'on with --for, before its end', obs: { untilText: unix(1800), record, key: 'k' }, now: 1799, on: true },
    { name: '--for: ended by itself at its end, nobody ran anything', obs: { untilText: unix(1800), record, key: 'k' }, now: 1800, on: false, endedAt: at(1800).toISOString() },
    { name: 'ended by --off (until file gone, record says when)', obs: { untilText: null, record: { ...record, endedAt: at(60).toISOString() }, key: null }, now: 120, on: false, endedAt: at(60).toISOString() },
    { name: 'a torn or foreign until file is off, as for Caddy (no 10-digit time ahead)', obs: { untilText: 'yes', record: null, key: 'k' }, now: 0, on: false },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const s = maintenanceStatus(r.obs, at(r.now));
      expect(s.on).toBe(r.on);
      expect(s.endedAt).toBe(r.endedAt);
    });
  }

  it('the key is sent only while it is on', () => {
    const obs: MaintenanceObs = { untilText: unix(60), record, key: 'abc' };
    expect(maintenanceHeaders(obs, at(59))).toEqual({ [MAINTENANCE_KEY_HEADER]: 'abc' });
    expect(maintenanceHeaders(obs, at(60))).toEqual({});
  });
});

describe("Telegram's errors during a window are the window's", () => {
  const window = { since: T0, endedAt: T0 + 600_000 };
  const err = (s: number, msg = 'Wrong response from the webhook: 503 Service Unavailable') => ({ last_error_date: Math.floor(T0 / 1000) + s, last_error_message: msg });
  const rows: [string, ReturnType<typeof err>, boolean][] = [
    ['a 503 inside', err(300), true],
    ['a 503 dated just after the end (second resolution)', err(603), true],
    ['a 503 well after the end: the app (or Caddy) now', err(700), false],
    ['a 503 before it began', err(-60), false],
    ['a 500 inside: not maintenance', err(300, 'Wrong response from the webhook: 500 Internal Server Error'), false],
  ];
  for (const [name, info, want] of rows) it(name, () => expect(maintenanceCausedError(info, { window }, at(900))).toBe(want));
  it('while on, up to now', () => expect(maintenanceCausedError(err(300), { window: { since: T0 } }, at(301))).toBe(true));
});

describe('--on / --off files', () => {
  it('--for sets a 10-digit end; --on again keeps since and the key; --off removes the switch and the key, records the end', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'maint-'));
    try {
      const layout = { root };
      const f = maintenanceFiles(layout);
      const p1 = planOn({ now: at(0), forMs: 30 * 60_000, message: 'DB <upgrade> & more' });
      turnOn(layout, p1, readMaintenance(layout), at(0));
      expect(fs.readFileSync(f.until, 'utf8')).toBe(`${unix(1800)}\n`);
      expect(fs.statSync(f.key).mode & 0o777).toBe(0o600);
      expect(fs.statSync(f.until).mode & 0o777).toBe(0o644);
      expect(fs.readFileSync(f.page, 'utf8')).toContain('DB &lt;upgrade&gt; &amp; more');
      const key = readMaintenance(layout).key;
      expect(key).toMatch(/^[0-9a-f]{64}$/);

      const p2 = planOn({ now: at(60), current: maintenanceStatus(readMaintenance(layout), at(60)) });
      turnOn(layout, p2, readMaintenance(layout), at(60));
      const s2 = maintenanceStatus(readMaintenance(layout), at(60));
      expect(s2).toMatchObject({ on: true, since: at(0).toISOString(), until: null, message: 'DB <upgrade> & more' });
      expect(readMaintenance(layout).key).toBe(key);

      turnOff(layout, readMaintenance(layout), at(120));
      expect([fs.existsSync(f.until), fs.existsSync(f.key)]).toEqual([false, false]);
      expect(maintenanceStatus(readMaintenance(layout), at(130))).toMatchObject({ on: false, endedAt: at(120).toISOString(), window: { since: T0, endedAt: T0 + 120_000 } });

      // a new window after one that ended: a new key and a new since
      turnOn(layout, planOn({ now: at(200), current: maintenanceStatus(readMaintenance(layout), at(200)) }), readMaintenance(layout), at(200));
      expect(maintenanceStatus(readMaintenance(layout), at(201))).toMatchObject({ on: true, since: at(200).toISOString() });
      expect(readMaintenance(layout).key).not.toBe(key);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
