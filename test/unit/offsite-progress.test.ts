// restic's --json status lines as a step's progress: what an upload or fetch shows, and that it moves in
// bounded steps (a log gets at most eleven lines per upload, not one per status object).
import { describe, expect, it } from 'vitest';
import { resticProgress } from '../../scripts/lib/offsite/progress.mts';

describe('resticProgress', () => {
  const table: [string, string, 'uploaded' | 'fetched', string | null][] = [
    ['a backup status line', '{"message_type":"status","percent_done":0.4237,"total_files":12,"files_done":5,"total_bytes":1048576,"bytes_done":444000}', 'uploaded', '40% uploaded'],
    ['a restore status line', '{"message_type":"status","seconds_elapsed":2,"percent_done":0.999,"total_files":3,"files_restored":2,"total_bytes":900,"bytes_restored":899}', 'fetched', '90% fetched'],
    ['the start', '{"message_type":"status","percent_done":0}', 'uploaded', '0% uploaded'],
    ['done', '{"message_type":"status","percent_done":1}', 'fetched', '100% fetched'],
    ['out of range is clamped', '{"message_type":"status","percent_done":1.7}', 'uploaded', '100% uploaded'],
    ['the summary is not progress', '{"message_type":"summary","snapshot_id":"abc","data_added":1}', 'uploaded', null],
    ['a status without percent_done', '{"message_type":"status","total_bytes":10}', 'uploaded', null],
    ['a torn line', '{"message_type":"stat', 'uploaded', null],
    ['plain text', 'repository 1234abcd opened', 'fetched', null],
    ['an empty line', '', 'fetched', null],
  ];
  for (const [name, line, verb, want] of table) it(name, () => expect(resticProgress(line, verb)).toBe(want));

  it('a whole upload of 6,000 status lines gives at most eleven distinct details', () => {
    const details = new Set<string>();
    for (let i = 0; i <= 6000; i++) details.add(resticProgress(JSON.stringify({ message_type: 'status', percent_done: i / 6000 }), 'uploaded')!);
    expect([...details]).toEqual(['0% uploaded', '10% uploaded', '20% uploaded', '30% uploaded', '40% uploaded', '50% uploaded', '60% uploaded', '70% uploaded', '80% uploaded', '90% uploaded', '100% uploaded']);
  });
});
