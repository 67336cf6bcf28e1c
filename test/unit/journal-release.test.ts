import { describe, it, expect, beforeEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  backupWhileLive, appendJournal, currentRelease, newReleaseId, parseJournal, previousSuccessful, readJournal,
  referencedBackupIds, resolveTarget, unfinishedReleases, releaseRows, ResolveError,
} from '../../scripts/lib/release/journal.mts';

const line = (o: Record<string, unknown>) => JSON.stringify(o);

describe('journal: parse and fold', () => {
  it('folds lines with the same id, last wins, phases merge', () => {
    const text = [
      line({ id: 'a', kind: 'rollout', appTag: 't1', result: 'in-progress', phase: 'build', phases: { preflight: 10 } }),
      line({ id: 'a', result: 'in-progress', phase: 'swap', backupId: 'b1', phases: { build: 20 } }),
      line({ id: 'a', result: 'ok', endedAt: 'x', phases: { swap: 30 } }),
    ].join('\n') + '\n';
    const { releases, skipped } = parseJournal(text);
    expect(skipped).toEqual([]);
    expect(releases).toHaveLength(1);
    expect(releases[0]).toMatchObject({ id: 'a', kind: 'rollout', appTag: 't1', result: 'ok', backupId: 'b1', phase: 'swap', lines: 3 });
    expect(releases[0].phases).toEqual({ preflight: 10, build: 20, swap: 30 });
  });

  it('tolerates a torn last line and junk lines', () => {
    const text = line({ id: 'a', result: 'ok', appTag: 't1' }) + '\nnot json\n' + line({ id: 'b', result: 'ok', appTag: 't2' }) + '\n{"id":"c","res';
    const { releases, skipped } = parseJournal(text);
    expect(releases.map((r) => r.id)).toEqual(['a', 'b']);
    expect(skipped.map((s) => s.line)).toEqual([2, 4]);
  });

  it('keeps chronological order of first appearance', () => {
    const text = [line({ id: 'a', result: 'in-progress' }), line({ id: 'b', result: 'ok' }), line({ id: 'a', result: 'failed' })].join('\n');
    expect(parseJournal(text).releases.map((r) => r.id)).toEqual(['a', 'b']);
  });
});

describe('journal: append', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
    file = path.join(dir, 'releases.jsonl');
  });

  it('appends whole lines and reads them back', () => {
    appendJournal(file, { id: 'a', result: 'in-progress' });
    appendJournal(file, { id: 'a', result: 'ok', appTag: 't' });
    expect(fs.readFileSync(file, 'utf8').split('\n')).toHaveLength(3);
    expect(readJournal(file).releases[0]).toMatchObject({ result: 'ok', appTag: 't' });
  });

  it('never glues a new line onto a torn one', () => {
    fs.writeFileSync(file, line({ id: 'a', result: 'ok', appTag: 't1' }) + '\n{"id":"torn');
    appendJournal(file, { id: 'b', result: 'ok', appTag: 't2' });
    const r = readJournal(file);
    expect(r.releases.map((x) => x.id)).toEqual(['a', 'b']);
    expect(r.skipped).toHaveLength(1);
  });

  it('missing file reads as empty', () => {
    expect(readJournal(path.join(dir, 'nope.jsonl'))).toEqual({ releases: [], skipped: [] });
  });

  it('concurrent appends from many writers stay whole lines', async () => {
    const { spawn } = await import('node:child_process');
    // Several real processes call appendJournal at the same moment (a barrier file releases them
    // together); lines are long, so that a torn or interleaved write would show.
    const writers = 6;
    const perWriter = 40;
    const go = path.join(dir, 'go');
    const script = path.join(dir, 'writer.mts');
    const journalModule = path.resolve('scripts/lib/release/journal.mts');
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';
import { appendJournal } from ${JSON.stringify(journalModule)};
const [file, go, w, n] = process.argv.slice(2);
while (!fs.existsSync(go)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
for (let i = 0; i < Number(n); i++) appendJournal(file, { id: w + '-' + i, result: 'ok', writer: w, seq: i, pad: (w + i).repeat(1500) });
`,
    );
    const exits = Array.from({ length: writers }, (_, w) => {
      const child = spawn(process.execPath, [script, file, go, `w${w}`, String(perWriter)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      return new Promise<{ code: number | null; stderr: string }>((res) => child.on('exit', (code) => res({ code, stderr })));
    });
    await new Promise((r) => setTimeout(r, 300)); // let every writer reach the barrier
    fs.writeFileSync(go, '');
    for (const e of await Promise.all(exits)) expect(e).toEqual({ code: 0, stderr: '' });

    const text = fs.readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true); // no torn tail
    // Blank lines can appear: appendJournal's torn-tail repair may read the last byte of another
    // writer's line while that write is still in progress, and prefix a '\n'. The parser ignores
    // them; what must hold is that every record is whole and none is lost.
    const lines = text.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(writers * perWriter);
    const seen = new Map<string, number[]>();
    for (const l of lines) {
      const v = JSON.parse(l) as { id: string; writer: string; seq: number; pad: string };
      expect(v.pad).toBe((v.writer + v.seq).repeat(1500));
      seen.set(v.writer, [...(seen.get(v.writer) ?? []), v.seq]);
    }
    const inOrder = Array.from({ length: perWriter }, (_, i) => i);
    expect([...seen.keys()].sort()).toEqual(Array.from({ length: writers }, (_, w) => `w${w}`));
    for (const seqs of seen.values()) expect(seqs).toEqual(inOrder);
    const r = readJournal(file);
    expect(r.skipped).toEqual([]);
    expect(r.releases).toHaveLength(writers * perWriter);
  });
});

describe('journal: ids and targets', () => {
  it('release ids are sortable and unique', () => {
    const now = new Date('2025-03-01T12:34:56.789Z');
    const a = newReleaseId(now, '1a2b3c4d5e6f');
    expect(a).toBe('20250301T123456Z-1a2b3c4d5e6f');
    expect(newReleaseId(now, '1a2b3c4d5e6f', [a])).toBe(`${a}.2`);
    expect(newReleaseId(now, 'rollback')).toBe('20250301T123456Z-rollback');
  });

  const hist = parseJournal([
    line({ id: 'r1', kind: 'rollout', appTag: 'aaaa1111', gitSha: 'aaaa1111ffff', result: 'ok', backupId: 'b1' }),
    line({ id: 'r2', kind: 'rollout', appTag: 'bbbb2222', gitSha: 'bbbb2222ffff', result: 'ok', backupId: 'b2' }),
    line({ id: 'r3', kind: 'rollout', appTag: 'cccc3333', gitSha: 'cccc3333ffff', result: 'rolled-back', backupId: 'b3' }),
    line({ id: 'r4', kind: 'rollout', appTag: 'bbbb2222', gitSha: 'bbbb2222ffff', result: 'ok', backupId: 'b4' }),
    line({ id: 'r5', kind: 'rollout', appTag: 'dddd4444', gitSha: 'dddd4444ffff', result: 'in-progress', backupId: 'b5' }),
  ].join('\n')).releases;

  it('current = newest ok release; previous = newest ok release with another image', () => {
    expect(currentRelease(hist)?.id).toBe('r4');
    expect(previousSuccessful(hist)?.id).toBe('r1');
    expect(unfinishedReleases(hist).map((r) => r.id)).toEqual(['r5']);
    expect(currentRelease([])).toBeUndefined();
    expect(previousSuccessful(hist.slice(0, 1))).toBeUndefined();
  });

  it('rolling back twice toggles between the last two images', () => {
    const after = parseJournal([
      line({ id: 'r1', appTag: 'v1', result: 'ok' }),
      line({ id: 'r2', appTag: 'v2', result: 'ok' }),
      line({ id: 'rb', kind: 'rollback', appTag: 'v1', result: 'ok' }),
    ].join('\n')).releases;
    expect(currentRelease(after)?.appTag).toBe('v1');
    expect(previousSuccessful(after)?.appTag).toBe('v2');
  });

  it('--to resolves release id, id prefix, tag and sha prefix', () => {
    expect(resolveTarget(hist, 'r1').id).toBe('r1');
    expect(resolveTarget(hist, 'aaaa1111').id).toBe('r1');
    expect(resolveTarget(hist, 'bbbb').id).toBe('r4'); // sha prefix, newest of same image
    expect(resolveTarget(hist, 'bbbb2222ff').id).toBe('r4');
  });

  it('--to refuses failed, unknown and ambiguous targets', () => {
    expect(() => resolveTarget(hist, 'r3')).toThrow(/rolled-back/);
    expect(() => resolveTarget(hist, 'cccc')).toThrow(/did not succeed/);
    expect(() => resolveTarget(hist, 'zzzz')).toThrow(ResolveError);
    expect(() => resolveTarget(hist, 'r')).toThrow(/ambiguous/);
  });

  it('referenced backups and list rows', () => {
    expect([...referencedBackupIds(hist)].sort()).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
    const rows = releaseRows(hist, new Date());
    expect(rows[0].id).toBe('r5');
    expect(rows.find((r) => r.current === '*')?.id).toBe('r4');
  });
});

describe('journal: backup for rollback --with-db', () => {
  const rs = parseJournal([
    JSON.stringify({ id: 'r1', kind: 'rollout', appTag: 'v1', result: 'ok', backupId: 'b0', previousAppTag: null }),
    JSON.stringify({ id: 'r2', kind: 'rollout', appTag: 'v2', result: 'ok', backupId: 'b1', previousAppTag: 'v1', previousRelease: 'r1' }),
    JSON.stringify({ id: 'r3', kind: 'rollout', appTag: 'v3', result: 'rolled-back', backupId: 'b2', previousAppTag: 'v2', previousRelease: 'r2' }),
  ].join('\n')).releases;
  it('is the pre-deploy backup of the release deployed over the target', () => {
    expect(backupWhileLive(rs, rs[0])?.backupId).toBe('b1');
    expect(backupWhileLive(rs, rs[1])?.backupId).toBe('b2');
    expect(backupWhileLive(rs, rs[2])).toBeNull();
  });
});
