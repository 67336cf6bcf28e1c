#!/usr/bin/env node
// Finish or undo what an interrupted operation (rollout, rollback, restore) left: observe -> decide
// -> act under the operation lock. Run at boot and every minute by the installed timer; every
// operation also runs it first. That timer is installed with the other schedules by
// scripts/schedules.mts --install (RUNBOOK: Alerts and schedules).
import path from 'node:path';
import { runMain } from './lib/cli/main.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { acquireLock, describeHolder, LockBusyError } from './lib/host/lock.mts';
import { runRecovery } from './lib/recovery/run.mts';
import { recoverAndNotify } from './lib/release/recovery.mts';
import { describeAction } from './lib/recovery/decide.mts';

export const spec: CommandSpec = {
  name: 'recover.mts',
  summary: 'finish or undo an interrupted rollout, rollback or restore (run at boot and every minute by the timer)',
  usage: [
    'node scripts/recover.mts --config .env.prod',
    'node scripts/recover.mts --config .env.prod --dry-run      # what it would do',
  ],
  options: [
    sharedOption('config'),
    sharedOption('dryRun', 'here: the recovery actions'),
    { name: 'health-timeout', type: 'number', arg: '<s>', default: 90, describe: 'how long a restarted app may take to become healthy' },
    sharedOption('json', 'the actions and the result'),
    sharedOption('quiet'),
  ],
  details: [
    'Recovery is a pure decision from STATE_DIR/releases.jsonl, STATE_DIR/restore-journal.json and what Docker',
    'and the database show; running it twice is running it once. If another operation holds the lock, it does',
    'nothing and exits 0 ("operation in progress"): that operation recovers first itself.',
    'The timer (at boot and every minute) is installed by every rollout when it is missing (the safety net),',
    'and with the other schedules:',
    '  node scripts/schedules.mts --config .env.prod --install   (--status, --remove)',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  nothing to do, recovered, or an operation is in progress',
    '  1  recovery failed or stopped to ask (the exact next command is printed)',
    '  2  usage or config error',
  ].join('\n'),
};

runMain(spec, async ({ values: v }, log) => {
  const env = loadOpsEnv(path.resolve(sharedValues(v).config));
  log.setOpsLog(env.layout.opsLog);

  if (v['dry-run']) {
    const r = await runRecovery(env, log, { dryRun: true });
    if (v.json) log.out(JSON.stringify({ dryRun: true, actions: r.actions }, null, 2));
    else log.out(r.actions.length ? r.actions.map((a, i) => `${i + 1}. ${describeAction(a)}`).join('\n') : 'nothing to recover');
    return 0;
  }
  let lock;
  try {
    lock = await acquireLock(env.layout, { operation: 'recover', log });
  } catch (e) {
    if (e instanceof LockBusyError) {
      const msg = `operation in progress: ${describeHolder(e.holder)}; it recovers on its own, nothing to do`;
      if (v.json) log.out(JSON.stringify({ inProgress: true, holder: e.holder }));
      else log.info(msg);
      return 0;
    }
    throw e;
  }
  try {
    // notified (recovery) only when it acted or failed: the every-minute run with nothing to do is silent
    const r = await recoverAndNotify(env, log, { healthTimeoutS: Number(v['health-timeout']) });
    if (v.json) log.out(JSON.stringify(r, null, 2));
    else if (!r.actions.length) log.info('nothing to recover');
    else if (r.exitCode === 0) log.ok(`recovered (${r.actions.length} action(s))`);
    if (r.next && !v.json) log.error(`next: ${r.next}`);
    return r.exitCode;
  } finally {
    lock.release();
  }
});
