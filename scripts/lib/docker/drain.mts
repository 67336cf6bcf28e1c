// The toolkit's own drain, for an app without a readiness path (contract item `readiness`; such an
// app sets READY_PATH=/health). Caddy routes to the one app container while its active health check
// passes, and that check goes through Caddy's internal drain gate (docker/caddy/Caddyfile), which
// answers 503 while STATE_DIR/proxy/draining exists. So before the old container gets SIGTERM, the
// toolkit writes that file and waits until Caddy has checked at least once: from then on Caddy holds
// new requests instead of sending one to a listener that is about to close (a POST that reaches it in
// that instant gets 502, as Caddy only retries refused dials). The file is removed as soon as the old
// container is stopped: a stopped app fails the check by itself, and the new one passes it when its
// /health answers 200. A reference-style app signals the same itself (503 on READY_PATH after
// SIGTERM), so for it the toolkit does nothing here.
import fs from 'node:fs';
import path from 'node:path';
import type { StateLayout } from '../config/state.mts';
import type { Logger } from '../cli/log.mts';
import { processStartTime, recordedPidAlive } from '../host/lock.mts';
import { writeJsonAtomic } from '../host/records.mts';
import { pollingBot } from '../config/shape.mts';

/**
 * How long after writing the flag the old container may be stopped: Caddy checks every 250 ms
 * (health_interval) and one failed check takes the upstream out (health_fails 1); three intervals
 * leave room for a check that started just before the flag and for a slow one under load.
 */
export const DRAIN_SETTLE_MS = 750;

/** Who drains: the process that will stop the app, so that recovery can tell a stale flag. */
export interface DrainFlag {
  pid: number;
  /** /proc start time of pid: a reused pid is not the owner */
  pidStart?: string;
  since: string;
  /** what stops the app: "swap to <tag>", "restore", ... */
  what: string;
}

/** Without a readiness path of its own (READY_PATH=/health) the app is drained by the toolkit. */
export function toolkitDrains(values: Record<string, string | undefined>): boolean {
  // a polling bot has no Caddy to route around it (bot shape polling): nothing to drain
  if (pollingBot(values)) return false;
  return (values.READY_PATH || '/ready') === '/health';
}

export const drainFlagFile = (layout: Pick<StateLayout, 'root'>) => path.join(layout.root, 'proxy', 'draining');

export function readDrainFlag(layout: Pick<StateLayout, 'root'>): DrainFlag | null {
  try {
    return JSON.parse(fs.readFileSync(drainFlagFile(layout), 'utf8')) as DrainFlag;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // a torn or foreign file still drains (Caddy only looks at its existence): report it as ownerless
    return { pid: 0, since: '?', what: `unreadable flag (${(err as Error).message})` };
  }
}

/** The flag as recovery and smoke judge it: stale once its owner is gone. */
export interface DrainStatus {
  what: string;
  since: string;
  ownerAlive: boolean;
}

export function drainStatus(layout: Pick<StateLayout, 'root'>): DrainStatus | null {
  const flag = readDrainFlag(layout);
  return flag && { what: flag.what, since: flag.since, ownerAlive: recordedPidAlive(flag.pid, flag.pidStart) };
}

export function clearDrain(layout: Pick<StateLayout, 'root'>): void {
  fs.rmSync(drainFlagFile(layout), { force: true });
}

function writeDrainFlag(layout: Pick<StateLayout, 'root'>, what: string): void {
  const flag: DrainFlag = { pid: process.pid, pidStart: processStartTime(process.pid), since: new Date().toISOString(), what };
  // 0755/0644: Caddy (root in its container, without CAP_DAC_OVERRIDE) must see the file whoever runs
  // the toolkit; it holds no secret
  writeJsonAtomic(drainFlagFile(layout), flag, { dirMode: 0o755, fileMode: 0o644 });
}

/**
 * Run `stop` (whatever stops the live app container) with Caddy already routing around it, when the
 * app cannot say so itself. The flag is removed whatever `stop` does; if this process dies in
 * between, recovery removes it (its owner is gone).
 */
export async function withDrain<T>(
  env: { layout: Pick<StateLayout, 'root'>; values: Record<string, string | undefined> },
  log: Pick<Logger, 'info'>,
  what: string,
  stop: () => Promise<T>,
): Promise<T> {
  if (!toolkitDrains(env.values)) return stop();
  writeDrainFlag(env.layout, what);
  log.info(`drain: Caddy stops routing to the app before it stops (READY_PATH=/health: the toolkit drains it, ${DRAIN_SETTLE_MS} ms)`);
  try {
    await new Promise((res) => setTimeout(res, DRAIN_SETTLE_MS));
    return await stop();
  } finally {
    clearDrain(env.layout);
  }
}
