// What recovery looks at besides the journals: the live state, observed once, as plain data. The
// decision (recovery/decide.mts) is a pure function of the journals and this, so every interruption
// point is a row in a table test. docker/ and config/ fill it in (observeState); nothing here runs.

/** One app container of the project, in any state. */
export interface ObservedApp {
  id: string;
  /** image tag the container was created from (APP_TAG of a release) */
  tag: string;
  /** docker's State.Status */
  state: 'created' | 'running' | 'restarting' | 'paused' | 'exited' | 'dead' | 'removing';
  /** docker's State.Health.Status; undefined when the image has no healthcheck */
  health?: 'starting' | 'healthy' | 'unhealthy';
  /** docker's State.StartedAt (ISO); undefined when unknown */
  startedAt?: string;
}

/** PRAGMA user_version of the live database, or why it could not be read. */
export type ObservedUserVersion =
  | { kind: 'absent' } // no database file yet (first deploy)
  | { kind: 'read'; value: number }
  | { kind: 'unreadable'; error: string }; // never treated as "schema moved": recovery asks instead

export interface ObservedState {
  /** app containers of the compose project (usually 0 or 1; 2 only if something went badly wrong) */
  apps: ObservedApp[];
  /** the proxy (caddy) container runs */
  proxyRunning: boolean;
  userVersion: ObservedUserVersion;
  /** ids of verified local backups (manifest present) */
  backupIds: string[];
  /** app image tags present in the local image store */
  imageTags: string[];
  /** entries directly under STATE_DIR (data, uploads, kept-aside states, staging dirs, ...) */
  stateEntries: string[];
  /** pids from the journals whose process is still alive (an operation is still running: leave it) */
  alivePids: number[];
  /** the releases' front ends (STATE_DIR/frontend): which one Caddy serves, which exist; absent: not looked at */
  frontend?: { live: string | null; staged: string[] };
  /** STATE_DIR/proxy/draining (docker/drain.mts): Caddy routes nothing to the app while it exists; absent: none */
  drain?: { what: string; since: string; ownerAlive: boolean } | null;
  /** STATE_DIR/proxy/webhook-hold exists (release/webhook-hold.mts): Caddy answers Telegram 503 */
  webhookHeld?: boolean;
  /** the clock when observed (ISO): how long an unfinished release has served; absent: it counts as 0 */
  now?: string;
  /** backups staged beside the live data (STATE_DIR/.stage-<id>, restore/prestage.mts); complete once verified whole; absent: none */
  staged?: { backupId: string; complete: boolean }[];
}
