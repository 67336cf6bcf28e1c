// Where everything lives on the host. One place, so backup, restore, rollout and smoke agree.
import { resolve, join } from 'node:path';

export interface StateLayout {
  root: string;
  /** bind-mounted as /app/data */
  data: string;
  db: string;
  /** bind-mounted as /app/uploads */
  uploads: string;
  backups: string;
  /** releases journal, JSON lines */
  releases: string;
  logs: string;
  opsLog: string;
  lockFile: string;
  /** present only while a restore is in progress (or was interrupted) */
  restoreJournal: string;
  /** offsite records: last-check.json (restic check), last-upload.json (newest backup offsite) */
  offsite: string;
  offsiteLastCheck: string;
  offsiteLastUpload: string;
  /** drill/last-drill.json: the last restore drill, its backup and result */
  lastDrill: string;
}

export const DB_FILE_NAME = 'lazyflow.db';

export function stateLayout(stateDir: string): StateLayout {
  const root = resolve(stateDir);
  return {
    root,
    data: join(root, 'data'),
    db: join(root, 'data', DB_FILE_NAME),
    uploads: join(root, 'uploads'),
    backups: join(root, 'backups'),
    releases: join(root, 'releases.jsonl'),
    logs: join(root, 'logs'),
    opsLog: join(root, 'logs', 'ops.log'),
    lockFile: join(root, 'ops.lock'),
    restoreJournal: join(root, 'restore-journal.json'),
    offsite: join(root, 'offsite'),
    offsiteLastCheck: join(root, 'offsite', 'last-check.json'),
    offsiteLastUpload: join(root, 'offsite', 'last-upload.json'),
    lastDrill: join(root, 'drill', 'last-drill.json'),
  };
}
