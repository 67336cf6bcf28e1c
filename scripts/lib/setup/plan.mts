// Setup as a plan: what setup would do, step by step, decided from observed state alone (pure, one
// row per case in test/unit/setup-plan.test.ts). Each step either does something, has nothing to do
// because what is there is right (and says so), or is a problem that stops setup before it changes
// anything (a conflict in the env file, a state directory owned by someone else).
import type { EnvFilePlan } from './env-file.mts';
import { describeAction, isSecretKey } from './env-file.mts';

export type SetupStepName = 'env-file' | 'state-dir' | 'rollout' | 'backup' | 'schedules' | 'smoke';

/** One directory of STATE_DIR as found. */
export interface DirObservation {
  path: string;
  /** the app (uid 1000) writes here: data/ and uploads/ */
  appOwned: boolean;
  exists: boolean;
  uid?: number;
  /** entries in it (0 when missing) */
  entries?: number;
}

export interface SetupObserved {
  envFile: EnvFilePlan;
  envFilePath: string;
  /** the env file exists with group/other permission bits */
  envFileMode?: number;
  stateDirs: DirObservation[];
  appUid: number;
  /** the app container of this project, if any */
  live: { tag: string; status: string; health?: string } | null;
  /** the tag the checkout's HEAD would be deployed as */
  headTag: string;
  /** newest verified local backup, if any */
  newestBackup: string | null;
  /** schedule files that would be written or removed (0 and 0: installed as they should be) */
  schedules: { write: number; remove: number; mode: string };
}

export interface SetupStep {
  step: SetupStepName;
  /** change something now */
  apply: boolean;
  /** what it does, or why nothing needs doing */
  what: string;
  /** stops setup before anything changes: the exit code and the next command */
  problem?: { exitCode: 1 | 2; fix: string };
  /** for the state step: directories to create or hand to the app's uid */
  dirs?: { path: string; create: boolean; chown: boolean }[];
}

export function planSetup(o: SetupObserved): SetupStep[] {
  const steps: SetupStep[] = [];
  const ef = o.envFile;
  const conflicts = ef.actions.filter((a) => a.action === 'conflict');
  const missing = ef.actions.filter((a) => a.action === 'missing');
  const set = ef.actions.filter((a) => a.action === 'set');
  if (conflicts.length) {
    steps.push({
      step: 'env-file', apply: false, what: conflicts.map(describeAction).join('; '),
      problem: { exitCode: 2, fix: `setup never overwrites a value: if the new one is right, edit it in ${o.envFilePath} (sudoedit ${o.envFilePath}), then run setup again; else run setup without it` },
    });
  } else if (missing.length) {
    const keys = missing.map((a) => a.key);
    const secret = keys.filter(isSecretKey);
    steps.push({
      step: 'env-file', apply: false, what: missing.map(describeAction).join('; '),
      problem: { exitCode: 2, fix: secret.length ? `put ${keys.join(', ')} into ${o.envFilePath} (sudoedit ${o.envFilePath}) and run setup again` : `pass ${keys.map((k) => `${k}=...`).join(' ')} in a --settings file, or edit ${o.envFilePath}, and run setup again` },
    });
  } else if (ef.text !== null) {
    steps.push({ step: 'env-file', apply: true, what: `write ${o.envFilePath} (mode 600): ${set.map(describeAction).join('; ') || 'from the example'}` });
  } else if (o.envFileMode !== undefined && (o.envFileMode & 0o077) !== 0) {
    steps.push({ step: 'env-file', apply: true, what: `${o.envFilePath} is readable by others (mode ${o.envFileMode.toString(8)}): chmod 600` });
  } else {
    steps.push({ step: 'env-file', apply: false, what: `${o.envFilePath} is complete: nothing to change` });
  }

  const dirs: NonNullable<SetupStep['dirs']> = [];
  const wrong: string[] = [];
  for (const d of o.stateDirs) {
    if (!d.exists) dirs.push({ path: d.path, create: true, chown: d.appOwned });
    else if (d.appOwned && d.uid !== o.appUid) {
      // an empty directory someone made with mkdir is setup's to hand over; one with data is not
      if (!d.entries) dirs.push({ path: d.path, create: false, chown: true });
      else wrong.push(`${d.path} belongs to uid ${d.uid} and holds ${d.entries} entries; the app runs as uid ${o.appUid}`);
    }
  }
  if (wrong.length) {
    steps.push({ step: 'state-dir', apply: false, what: wrong.join('; '), problem: { exitCode: 1, fix: `if that data is the app's: sudo chown -R ${o.appUid}:${o.appUid} ${o.stateDirs.filter((d) => wrong.some((w) => w.startsWith(d.path + ' '))).map((d) => d.path).join(' ')}; then run setup again` } });
  } else if (dirs.length) {
    steps.push({ step: 'state-dir', apply: true, dirs, what: dirs.map((d) => `${d.create ? 'create' : 'hand over'} ${d.path}${d.chown ? ` (owner uid ${o.appUid}, mode 750)` : ''}`).join('; ') });
  } else steps.push({ step: 'state-dir', apply: false, what: 'STATE_DIR and its directories exist with their owners' });

  if (!o.live) steps.push({ step: 'rollout', apply: true, what: `first rollout of ${o.headTag} (preflight, build, contract gate, stack up, health, Telegram and smoke gates)` });
  else if (o.live.status === 'running' && (o.live.health ?? 'healthy') === 'healthy') {
    steps.push({ step: 'rollout', apply: false, what: `the app runs ${o.live.tag}${o.live.tag === o.headTag ? ' (this checkout)' : `; this checkout is ${o.headTag}: deploy it with node scripts/rollout.mts --config ${o.envFilePath}`}` });
  } else {
    steps.push({ step: 'rollout', apply: false, what: `the app container of ${o.live.tag} is ${o.live.status}${o.live.health ? ` (${o.live.health})` : ''}, not a first deploy`, problem: { exitCode: 1, fix: `sudo node scripts/recover.mts --config ${o.envFilePath}, then sudo node scripts/rollout.mts --config ${o.envFilePath}` } });
  }

  steps.push(o.newestBackup
    ? { step: 'backup', apply: false, what: `newest backup ${o.newestBackup}` }
    : { step: 'backup', apply: true, what: 'first backup (verified, into STATE_DIR/backups)' });
  const s = o.schedules;
  steps.push(s.write || s.remove
    ? { step: 'schedules', apply: true, what: `install the schedules (${s.mode}): ${s.write} file(s) to write${s.remove ? `, ${s.remove} to remove` : ''}` }
    : { step: 'schedules', apply: false, what: `schedules installed (${s.mode}), as they should be` });
  steps.push({ step: 'smoke', apply: false, what: 'smoke and the status screen (read-only)' });
  return steps;
}

/** The first problem, if any: setup stops before it changes anything. */
export function firstProblem(steps: SetupStep[]): SetupStep | undefined {
  return steps.find((s) => s.problem);
}

/** Whether every step found things right (a re-run of a finished setup). */
export function nothingToDo(steps: SetupStep[]): boolean {
  return steps.every((s) => !s.apply && !s.problem);
}
