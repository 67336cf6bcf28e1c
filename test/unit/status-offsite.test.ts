// Offsite and drill as the watch and status see them, from the records under STATE_DIR (restic and
// Docker are never asked): the records are written atomically, an older upload never replaces a
// newer copy, and status's section and lines are pure functions of the records and a fake clock.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stateLayout } from '../../scripts/lib/config/state.mts';
import type { OpsEnv } from '../../scripts/lib/config/env.mts';
import { createLogger } from '../../scripts/lib/cli/log.mts';
import { newerUpload, readJsonRecord, writeJsonAtomic, type UploadRecord } from '../../scripts/lib/host/records.mts';
import { noteUpload, readLastUpload } from '../../scripts/lib/offsite/offsite.mts';
import { drillRecord } from '../../scripts/lib/restore/drill.mts';
import { drillLine, drillStatus, offsiteLines, offsiteStatus } from '../../scripts/lib/watch/status.mts';

const T0 = Date.parse('2026-12-01T12:00:00.000Z');
const H = 3_600_000;
const iso = (hoursAgo: number) => new Date(T0 - hoursAgo * H).toISOString();
const now = new Date(T0);
const upload = (id: string, hoursAgo: number, source: UploadRecord['source'] = 'upload'): UploadRecord => ({ backupId: id, backupCreatedAt: iso(hoursAgo), at: iso(hoursAgo - 0.1), snapshotId: '0123456789abcdef', source });

let dir: string;
let ctx: OpsEnv;
const lines: string[] = [];
const log = createLogger({ quiet: false, stdout: { write: (s: string) => lines.push(s) } as never, stderr: { write: (s: string) => lines.push(s) } as never });
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'status-offsite-'));
  ctx = { layout: stateLayout(dir), file: '.env.prod' } as OpsEnv;
  lines.length = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('records', () => {
  it('the layout names one place for each record', () => {
    const l = stateLayout('/srv/lazyflow');
    expect([l.offsiteLastUpload, l.offsiteLastCheck, l.lastDrill]).toEqual(['/srv/lazyflow/offsite/last-upload.json', '/srv/lazyflow/offsite/last-check.json', '/srv/lazyflow/drill/last-drill.json']);
  });

  it('writeJsonAtomic: mode 0600, no temp file left, round-trips; missing = null; unreadable throws with the path', () => {
    const f = path.join(dir, 'drill', 'last-drill.json');
    expect(readJsonRecord(f)).toBeNull();
    writeJsonAtomic(f, { a: 1 });
    expect(readJsonRecord(f)).toEqual({ a: 1 });
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(f))).toEqual(['last-drill.json']);
    fs.writeFileSync(f, '{"a":');
    expect(() => readJsonRecord(f)).toThrow(/last-drill\.json is not valid JSON/);
  });

  it.each([
    ['no record yet', null, upload('b', 5), true],
    ['a newer backup', upload('a', 10), upload('b', 5), true],
    ['the same backup again', upload('b', 5), upload('b', 5), true],
    ['an older backup (pushMissing uploads newest first)', upload('b', 5), upload('a', 10), false],
  ] as const)('newerUpload: %s', (_n, have, cand, want) => {
    expect(newerUpload(have, cand)).toBe(want);
  });

  it('noteUpload keeps the newest copy; a listing of what is recorded does not rewrite it; an unreadable record is replaced', () => {
    expect(readLastUpload(ctx)).toBeNull();
    noteUpload(ctx, upload('new', 1), log);
    noteUpload(ctx, upload('old', 30), log);
    expect(readLastUpload(ctx)).toMatchObject({ backupId: 'new', source: 'upload' });
    noteUpload(ctx, upload('new', 1, 'listing'), log);
    expect(readLastUpload(ctx)).toMatchObject({ backupId: 'new', source: 'upload' });
    fs.writeFileSync(ctx.layout.offsiteLastUpload, 'garbage');
    noteUpload(ctx, upload('old', 30, 'listing'), log);
    expect(readLastUpload(ctx)).toMatchObject({ backupId: 'old', source: 'listing' });
    expect(lines.join('')).not.toMatch(/could not record/);
  });

  it('noteUpload that cannot write warns and does not throw (the upload itself succeeded)', () => {
    fs.writeFileSync(path.join(dir, 'offsite'), 'a file where the directory should be');
    expect(() => noteUpload(ctx, upload('b', 1), log)).not.toThrow();
    expect(lines.join('')).toMatch(/could not record the upload of b in .*last-upload\.json/);
  });

  it.each([
    ['all checks pass', { checks: [{ name: 'backup verifies', status: 'pass' as const, detail: 'ok' }] }, { ok: true }],
    ['a check fails: its name and first line', { checks: [{ name: 'backup verifies', status: 'pass' as const, detail: 'ok' }, { name: 'row counts', status: 'fail' as const, detail: 'users 3 -> 2\nmore' }] }, { ok: false, reason: 'row counts: users 3 -> 2' }],
    ['the drill threw', { error: 'the drill app did not become healthy on backup b (exited)\nlogs...' }, { ok: false, reason: 'the drill app did not become healthy on backup b (exited)' }],
  ])('drillRecord: %s', (_n, x, want) => {
    const r = drillRecord({ backupId: 'b', from: 'offsite', ms: 1234.5, at: now, ...x });
    expect(r).toEqual({ backupId: 'b', from: 'offsite', ms: 1235, at: now.toISOString(), ...want });
  });
});

describe('status: offsite and drill (fake clock)', () => {
  const check = (hoursAgo: number, ok = true) => ({ at: iso(hoursAgo), ok, readDataSubset: null, detail: ok ? 'no errors were found' : 'offsite check failed: pack abc damaged\nmore' });

  it.each([
    ['not configured, no records', false, null, null, { configured: false, newest: null, lastCheck: null, note: expect.stringMatching(/^not configured: set OFFSITE_REPOSITORY/) }, ['offsite: not configured', '  not configured: set OFFSITE_REPOSITORY (RUNBOOK: offsite backups)']],
    ['configured, nothing yet', true, null, null, { note: expect.stringMatching(/nothing uploaded yet: .*--push; never checked: .*--check/) }, ['offsite: configured', '  newest copy: none recorded', '  last check: never', expect.stringMatching(/nothing uploaded yet/)]],
    ['configured, fresh copy and check', true, upload('b-3', 3), check(20), { newest: { backupId: 'b-3', age: '3h', uploadedAge: '3h', snapshotId: '0123456789abcdef' }, lastCheck: { ok: true, age: '20h' }, note: '' }, ['offsite: configured', '  newest copy: b-3 (backup 3h old, uploaded 3h ago, snapshot 01234567)', '  last check: ok 20h ago']],
    ['configured, failed check, old copy', true, upload('b-72', 72), check(50, false), { newest: { age: '3d' }, lastCheck: { ok: false, age: '2d' } }, ['offsite: configured', '  newest copy: b-72 (backup 3d old, uploaded 3d ago, snapshot 01234567)', '  last check: FAILED 2d ago: offsite check failed: pack abc damaged']],
    ['records unreadable', true, { error: 'x is not valid JSON' }, { error: 'y is not valid JSON' }, { newest: null, lastCheck: null, note: 'upload record unreadable: x is not valid JSON; check record unreadable: y is not valid JSON' }, ['offsite: configured', '  newest copy: none recorded', '  last check: never', '  upload record unreadable: x is not valid JSON; check record unreadable: y is not valid JSON']],
  ] as const)('offsite: %s', (_n, configured, up, chk, want, text) => {
    const o = offsiteStatus(configured, up as never, chk as never, now);
    expect(o).toMatchObject(want);
    expect(offsiteLines(o)).toEqual(text);
  });

  it.each([
    ['never', null, null, /^last drill: never: node scripts\/restore\.mts --config \.env\.prod --drill$/],
    ['passed', { backupId: 'b', at: iso(30), ok: true, from: 'local' as const }, { backupId: 'b', ok: true, age: '30h', from: 'local', reason: '' }, /^last drill: passed on b \(local\) 30h ago$/],
    ['failed', { backupId: 'b', at: iso(0.5), ok: false, reason: 'row counts: users 3 -> 2', from: 'offsite' as const }, { ok: false, age: '30m', reason: 'row counts: users 3 -> 2' }, /^last drill: FAILED on b \(offsite\) 30m ago: row counts: users 3 -> 2$/],
    ['unreadable', { error: 'z is not valid JSON' }, { error: 'z is not valid JSON' }, /^last drill: record unreadable: z is not valid JSON$/],
  ] as const)('drill: %s', (_n, rec, want, text) => {
    const d = drillStatus(rec as never, now);
    if (want === null) expect(d).toBeNull();
    else expect(d).toMatchObject(want);
    expect(drillLine(d)).toMatch(text);
  });
});
