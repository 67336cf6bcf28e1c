// The schedule context the unit tests of the schedules share: a checkout in /srv/lazyflow-deploy,
// STATE_DIR /srv/lazyflow, no offsite repository.
import type { ScheduleContext } from '../../scripts/lib/schedules/jobs.mts';

export const baseScheduleContext: ScheduleContext = {
  project: 'lazyflow',
  nodeBin: '/usr/bin/node',
  scriptsDir: '/srv/lazyflow-deploy/scripts',
  envFile: '/srv/lazyflow-deploy/.env.prod',
  projectDir: '/srv/lazyflow-deploy',
  logDir: '/srv/lazyflow/logs',
  stateDir: '/srv/lazyflow',
  localRepository: null,
  offsite: false,
};
