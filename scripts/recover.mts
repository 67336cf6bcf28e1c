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
import { chooseHeld } from './lib/recovery/choose.mts';
import { UsageError } from './lib/cli/errors.mts';
import { currentOperator } from './lib/host/lock.mts';

export const spec: CommandSpec = {
  name: 'recover.mts',
  summary: 'finish or undo an interrupted rollout, rollback or restore (run at boot and every minute by the timer)',
  usage: [
    'node scripts/recover.mts --config .env.prod',
    'node scripts/recover.mts --config .env.prod --dry-run      # what it would do',
    'node scripts/recover.mts --config .env.prod --keep <release>        # a held release: keep it and its data',
    'node scripts/recover.mts --config .env.prod --roll-back <release>   # a held release: back, with its pre-deploy backup',
  ],
  options: [
    sharedOption('config'),
    sharedOption('dryRun', 'here: the recovery actions'),
    { name: 'health-timeout', type: 'number', arg: '<s>', default: 90, describe: 'how long a restarted app may take to become healthy' },
    { name: 'keep', type: 'string', arg: '<release>', describe: 'recovery held this release (past its gate window): keep it, mark it good' },
    { name: 'roll-back', type: 'string', arg: '<release>', describe: 'recovery held this release: go back to the release before it with its pre-deploy backup (what it wrote moves to STATE_DIR/kept/)' },
    { name: 'ca', type: 'string', arg: '<pem>', describe: 'trust this root for the site certificate when an unfinished release is judged by its gates (private CA), as rollout.mts --ca' },
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
    'Finish forward: a rollout interrupted after its swap whose container runs healthy is judged by its gates and',
    'kept when it passes. Going back with a restore of its pre-deploy backup is automatic only within its gate',
    'window; past it recovery holds the release (it keeps serving), notifies once, exits 1 on every run and prints',
    'the two commands to choose between: --keep <release> or --roll-back <release>.',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  nothing to do, recovered, or an operation is in progress',
    '  1  recovery failed, stopped to ask, or holds a release for your choice (the exact next commands are printed)',
    '  2  usage or config error',
  ].join('\n'),
};

runMain(spec, async ({ values: v }, log) => {
  const env = loadOpsEnv(path.resolve(sharedValues(v).config));
  log.setOpsLog(env.layout.opsLog);

  const keep = v.keep ? String(v.keep) : undefined;
  const back = v['roll-back'] ? String(v['roll-back']) : undefined;
  if (keep && back) throw new UsageError('--keep and --roll-back exclude each other: choose one');
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
    if (keep || back) {
      chooseHeld(env, (keep ?? back)!, keep ? 'keep' : 'roll-back', currentOperator());
      log.ok(keep ? `release ${keep} kept: it is the current release` : `release ${back}: rolling back with its pre-deploy backup, as you chose`);
    }
    // notified (recovery) only when it acted or failed: the every-minute run with nothing to do is silent
    const gates = { healthTimeoutS: Number(v['health-timeout']), smoke: v.ca ? { ca: String(v.ca) } : undefined };
    const r = await recoverAndNotify(env, log, { healthTimeoutS: gates.healthTimeoutS, gates });
    if (v.json) log.out(JSON.stringify(r, null, 2));
    else if (r.waiting) log.error(r.error!);
    else if (!r.actions.length) log.info('nothing to recover');
    else if (r.exitCode === 0) log.ok(`recovered (${r.actions.length} action(s))`);
    if (r.next && !v.json) log.error(`next: ${r.next}`);
    return r.exitCode;
  } finally {
    lock.release();
  }
});
