// Issue 16, point 4: what grows has a bound. The releases journal is compacted past a size (the full
// file kept aside as one generation), and STATE_DIR/run/ loses what killed workers left.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compactJournal, compactedJournal, parseJournal, readJournal, type ReleaseLine } from '../../scripts/lib/release/journal.mts';
import { clearRunDir } from '../../scripts/lib/release/critical.mts';

const lines = (n: number): ReleaseLine[] => {
  const out: ReleaseLine[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ id: `r${i}`, kind: 'rollout', appTag: `v${i}`, result: 'in-progress', phase: 'build', phases: { build: 1 } });
    out.push({ id: `r${i}`, phase: 'health', phases: { swap: 2 } });
    out.push({ id: `r${i}`, result: i === 5 ? 'in-progress' : 'ok', phases: { record: 3 } });
  }
  return out;
};
const text = (ls: ReleaseLine[]) => ls.map((l) => JSON.stringify(l)).join('\n') + '\n';

describe('releases journal: bounded', () => {
  it('short enough: untouched', () => {
    expect(compactedJournal(text(lines(10)), { maxLines: 30 })).toBeNull();
  });
  it('past the bound: the newest releases and every unfinished one, folded exactly as readers fold the full file', () => {
    const full = parseJournal(text(lines(100))).releases;
    const out = compactedJournal(text(lines(100)), { maxLines: 30, keep: 10 })!;
    const compact = parseJournal(out).releases;
    expect(out.trim().split('\n')).toHaveLength(11);
    expect(compact.map((r) => r.id)).toEqual(['r5', ...Array.from({ length: 10 }, (_, i) => `r${90 + i}`)]);
    for (const r of compact) expect({ ...r, lines: 0 }).toEqual({ ...full.find((x) => x.id === r.id)!, lines: 0 });
    expect(compact.find((r) => r.id === 'r5')?.result).toBe('in-progress');
  });

  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bounds-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('compactJournal keeps the whole old file aside as releases.jsonl.1 and leaves no temporary file', () => {
    const f = path.join(dir, 'releases.jsonl');
    fs.writeFileSync(f, text(lines(50)));
    const before = fs.readFileSync(f, 'utf8');
    expect(compactJournal(f, { maxLines: 30, keep: 5 })).toBe(`${f}.1`);
    expect(fs.readFileSync(`${f}.1`, 'utf8')).toBe(before);
    expect(readJournal(f).releases.map((r) => r.id)).toEqual(['r5', 'r45', 'r46', 'r47', 'r48', 'r49']);
    expect(fs.readdirSync(dir).sort()).toEqual(['releases.jsonl', 'releases.jsonl.1']);
    // run twice: short now, nothing more happens
    expect(compactJournal(f, { maxLines: 30, keep: 5 })).toBeNull();
  });

  it('STATE_DIR/run/: the payloads and results killed workers left are removed, nothing else', () => {
    for (const n of ['r1.json', 'r1.result.json', 'r2.json', 'keep.txt']) fs.writeFileSync(path.join(dir, n), '{}');
    expect(clearRunDir(dir).sort()).toEqual(['r1.json', 'r1.result.json', 'r2.json']);
    expect(fs.readdirSync(dir)).toEqual(['keep.txt']);
    expect(clearRunDir(path.join(dir, 'absent'))).toEqual([]);
  });
});
