// The watch's knobs, read from the env file. Pure, so preflight can check them too.
export interface WatchSettings {
  /** a problem must be seen on this many consecutive runs before it is announced (a blip is not an outage) */
  confirmRuns: number;
  /** an announced problem that is still there is announced again after this long */
  remindAfterMs: number;
  /** loop interval without --once (the timer runs --once every minute instead) */
  intervalMs: number;
  certWarnDays: number;
  backupMaxAgeMs: number;
  /** newest offsite copy (STATE_DIR/offsite/last-upload.json) older than this is a problem, when OFFSITE_REPOSITORY is set */
  offsiteMaxAgeMs: number;
  minFreeBytes: number;
  /** a container restart or OOM kill stays a problem this long after the last one */
  restartQuietMs: number;
  /** a Telegram last_error this recent is a problem */
  telegramErrorFreshMs: number;
  /** pending_update_count rising on this many consecutive runs is a problem */
  pendingGrowRuns: number;
  heartbeatUrl?: string;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "15m", "6h", "2d", "500ms"; a bare number is seconds. null when not a duration. */
export function parseDuration(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/.exec(s);
  if (!m) return null;
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']);
}

export const WATCH_DURATION_KEYS = ['WATCH_REMIND_AFTER', 'WATCH_INTERVAL', 'WATCH_BACKUP_MAX_AGE', 'WATCH_OFFSITE_MAX_AGE'] as const;
export const WATCH_NUMBER_KEYS = ['WATCH_CONFIRM_RUNS', 'WATCH_CERT_DAYS', 'WATCH_MIN_FREE_MB'] as const;

export class WatchSettingsError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.key = key;
  }
}

export function watchSettings(values: Record<string, string | undefined>): WatchSettings {
  const dur = (key: string, dflt: string) => {
    const raw = (values[key] ?? '').trim() || dflt;
    const ms = parseDuration(raw);
    if (ms === null || ms <= 0) throw new WatchSettingsError(key, `${key}="${raw}" is not a duration (e.g. 90s, 15m, 6h, 2d)`);
    return ms;
  };
  const num = (key: string, dflt: number, min: number) => {
    const raw = (values[key] ?? '').trim();
    if (!raw) return dflt;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min) throw new WatchSettingsError(key, `${key}="${raw}" must be a whole number >= ${min}`);
    return n;
  };
  return {
    confirmRuns: num('WATCH_CONFIRM_RUNS', 2, 1),
    remindAfterMs: dur('WATCH_REMIND_AFTER', '6h'),
    intervalMs: dur('WATCH_INTERVAL', '60s'),
    certWarnDays: num('WATCH_CERT_DAYS', 14, 1),
    backupMaxAgeMs: dur('WATCH_BACKUP_MAX_AGE', '26h'),
    offsiteMaxAgeMs: dur('WATCH_OFFSITE_MAX_AGE', '26h'),
    minFreeBytes: num('WATCH_MIN_FREE_MB', 1024, 1) * 2 ** 20,
    restartQuietMs: 15 * 60_000,
    telegramErrorFreshMs: 10 * 60_000,
    pendingGrowRuns: 3,
    heartbeatUrl: (values.HEARTBEAT_URL ?? '').trim() || undefined,
  };
}
