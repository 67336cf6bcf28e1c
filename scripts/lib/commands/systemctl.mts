// systemctl commands as data, like compose.mts: pure functions return argv arrays (without the
// leading "systemctl"), run by zx's $ in schedules/install.mts:
//   await $`systemctl ${enableNowArgs(timers)}`
// and the parser of `systemctl show` output. Nothing here runs anything.

export function daemonReloadArgs(): string[] {
  return ['daemon-reload'];
}

export function enableNowArgs(units: string[]): string[] {
  return ['enable', '--now', ...units];
}

/** a timer whose unit file changed picks up the new schedule on restart */
export function restartArgs(units: string[]): string[] {
  return ['restart', ...units];
}

export function disableNowArgs(units: string[]): string[] {
  return ['disable', '--now', ...units];
}

/** what status reads of each timer and service; one block per unit, blank-line separated */
export const SHOW_PROPERTIES = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'UnitFileState',
  'Result',
  'LastTriggerUSec',
  'NextElapseUSecRealtime',
  'ExecMainStatus',
  'ExecMainExitTimestamp',
] as const;

export function showArgs(units: string[]): string[] {
  return ['show', '--no-pager', '--timestamp=utc', `--property=${SHOW_PROPERTIES.join(',')}`, ...units];
}

export type ShowBlock = Record<string, string>;

/** `systemctl show a b` prints KEY=value lines, one block per unit separated by an empty line */
export function parseShow(text: string): ShowBlock[] {
  const blocks: ShowBlock[] = [];
  let cur: ShowBlock | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') {
      if (cur) blocks.push(cur);
      cur = null;
      continue;
    }
    const i = line.indexOf('=');
    if (i <= 0) continue;
    cur ??= {};
    cur[line.slice(0, i)] = line.slice(i + 1);
  }
  if (cur) blocks.push(cur);
  return blocks;
}

/**
 * A systemctl timestamp as ISO, or null for "never": `--timestamp=utc` prints "Wed 2026-12-02
 * 03:17:04 UTC"; older systemd prints the local zone ("... CET"), and microsecond properties may be
 * a bare number of µs since the epoch; empty, "n/a" and 0 mean never.
 */
export function parseTimestamp(v: string | undefined): string | null {
  const s = (v ?? '').trim();
  if (!s || s === 'n/a' || s === '0') return null;
  if (/^\d+$/.test(s)) return new Date(Number(s) / 1000).toISOString();
  const m = /^(?:[A-Za-z]{3} )?(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)? ?(UTC|GMT|Z)?$/.exec(s);
  if (m) {
    if (m[4]) return new Date(`${m[1]}T${m[2]}${m[3] ?? ''}Z`).toISOString();
    return null;
  }
  const d = Date.parse(s.replace(/^[A-Za-z]{3} /, ''));
  return Number.isNaN(d) ? null : new Date(d).toISOString();
}
