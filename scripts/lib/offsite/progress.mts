// Where a restic upload or fetch is: restic --json prints a "status" object many times a second
// (percent_done, and bytes_done for backup or bytes_restored for restore). The step's progress shows it
// beside the spinner on a terminal and as a line per change in a log, so the detail moves in steps of
// 10 %: at most eleven lines per upload in cron's log, never one per status object.
export const PROGRESS_STEP_PERCENT = 10;

/** The progress detail of one line of restic's --json output, or null for any other line. */
export function resticProgress(line: string, verb: 'uploaded' | 'fetched'): string | null {
  if (!line.startsWith('{')) return null;
  let o: { message_type?: unknown; percent_done?: unknown; total_bytes?: unknown };
  try {
    o = JSON.parse(line);
  } catch {
    return null;
  }
  if (o.message_type !== 'status' || typeof o.percent_done !== 'number' || !Number.isFinite(o.percent_done)) return null;
  const pct = Math.min(100, Math.max(0, o.percent_done * 100));
  return `${Math.floor(pct / PROGRESS_STEP_PERCENT) * PROGRESS_STEP_PERCENT}% ${verb}`;
}
