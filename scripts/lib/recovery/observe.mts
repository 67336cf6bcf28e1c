// Fill ObservedState from Docker, the database and STATE_DIR: the one impure input of the decision.
import fs from 'node:fs';
import type { OpsEnv } from '../config/env.mts';
import type { ObservedState, ObservedUserVersion } from './observed.mts';
import { observeApps, runningContainerCount } from '../docker/app-container.mts';
import { docker } from '../docker/run.mts';
import { imageTagsArgs } from '../commands/docker.mts';
import { withDbReadOnly } from '../host/sqlite-read.mts';
import { recordedPidAlive } from '../host/lock.mts';
import type { Release } from '../release/journal.mts';
import type { RestoreJournal } from '../restore/restore.mts';
import { observeFrontend } from '../release/frontend.mts';
import { drainStatus } from '../docker/drain.mts';
import { webhookHeld } from '../release/webhook-hold.mts';
import { observeStaged } from '../restore/prestage.mts';
import { pollingBot } from '../config/shape.mts';

/** user_version, with a read error kept as such: it never counts as "schema moved". */
export function observeUserVersion(dbFile: string): ObservedUserVersion {
  if (!fs.existsSync(dbFile)) return { kind: 'absent' };
  try {
    return { kind: 'read', value: withDbReadOnly(dbFile, (db) => db.pragma('user_version', { simple: true }) as number) };
  } catch (e) {
    return { kind: 'unreadable', error: (e as Error).message };
  }
}

/** A journal pid counts as alive only if it is the same process (start time matches when recorded). */
export async function observeState(env: OpsEnv, journals: { releases: Release[]; restoreJournal: RestoreJournal | null }, o: { selfPid?: number } = {}): Promise<ObservedState> {
  const apps = await observeApps(env);
  const tags = (await docker(imageTagsArgs(env.appImage), { nothrow: true })).stdout.split('\n').map((s) => s.trim()).filter((t) => t && t !== '<none>');
  const alivePids: number[] = [];
  for (const r of journals.releases) if (r.result === 'in-progress' && recordedPidAlive(r.pid, r.pidStart)) alivePids.push(r.pid as number);
  if (journals.restoreJournal && recordedPidAlive(journals.restoreJournal.pid, journals.restoreJournal.pidStart)) alivePids.push(journals.restoreJournal.pid);
  let stateEntries: string[] = [];
  try {
    stateEntries = fs.readdirSync(env.layout.root);
  } catch {
    /* no STATE_DIR yet */
  }
  let backupIds: string[] = [];
  try {
    backupIds = fs.readdirSync(env.layout.backups).filter((n) => fs.existsSync(`${env.layout.backups}/${n}/manifest.json`));
  } catch {
    /* none */
  }
  return {
    apps,
    // a polling bot has no proxy (bot shape polling): none to start
    proxyRunning: pollingBot(env.values) || (await runningContainerCount(env, 'caddy')) > 0,
    userVersion: observeUserVersion(env.layout.db),
    backupIds,
    imageTags: tags,
    stateEntries,
    alivePids: alivePids.filter((p) => p !== o.selfPid),
    frontend: observeFrontend(env),
    drain: drainStatus(env.layout),
    webhookHeld: webhookHeld(env.layout),
    now: new Date().toISOString(),
    staged: observeStaged(env.layout),
  };
}

