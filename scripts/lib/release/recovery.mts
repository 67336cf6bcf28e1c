// Recovery of what a killed process left unfinished in the releases journal.
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { liveApp } from '../docker/app-container.mts';
import { appendJournal, readJournal, unfinishedReleases } from './journal.mts';
import { revert } from './revert.mts';
import type { GateOptions } from './gates.mts';

export async function recoverUnfinished(env: OpsEnv, log: Logger, gates: GateOptions, operator: string): Promise<void> {
  const { releases } = readJournal(env.layout.releases);
  for (const r of unfinishedReleases(releases)) {
    const touchedLive = r.phase !== undefined && !['preflight', 'lock', 'build', 'backup'].includes(r.phase);
    if (!touchedLive) {
      log.warn(`release ${r.id} (${r.kind}) was interrupted in phase ${r.phase ?? '?'} before the swap: nothing live changed; marked failed`);
      appendJournal(env.layout.releases, { id: r.id, result: 'failed', endedAt: new Date().toISOString(), reason: `interrupted in phase ${r.phase ?? '?'} (process died); nothing live changed` });
      continue;
    }
    const prevTag = (r.previousAppTag as string | undefined) ?? null;
    const live = await liveApp(env);
    log.warn(`release ${r.id} (${r.kind} to ${r.appTag}) was interrupted in phase ${r.phase} (process died: kill -9, OOM or reboot); the app is now ${live ? `${live.status} on ${live.tag}` : 'absent'}`);
    await revert({
      env, log, operator, gates, kind: 'recovery',
      failed: { id: r.id, appTag: r.appTag, backupId: r.backupId, userVersionBefore: r.userVersionBefore, phase: r.phase },
      previous: prevTag ? { id: (r.previousRelease as string | null) ?? 'untracked', appTag: prevTag } : null,
      reason: `interrupted in phase ${r.phase} (process died)`,
    });
  }
}
