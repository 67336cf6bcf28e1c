// Setup, run: gather the operator's input (flags, a settings file, the terminal), observe the
// machine, plan (plan.mts), print the plan, then apply it top to bottom with the toolkit's own libs:
// the env file, STATE_DIR, the first rollout, the first backup, the schedules, smoke.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../cli/log.mts';
import { ConfigError, StepError, ToolkitError, UsageError } from '../cli/errors.mts';
import { REPO_ROOT, loadOpsEnv, opsEnvFromText, parseEnvText, type OpsEnv } from '../config/env.mts';
import { APP_UID, APP_GID, fsyncDir } from '../host/fsutil.mts';
import { writeTextAtomic } from '../host/records.mts';
import { liveApp } from '../docker/app-container.mts';
import { appTagFor } from '../release/plan.mts';
import { gitState, releaseLayout, runRollout } from '../release/rollout.mts';
import { newestBackup, runSmoke } from '../checks/smoke.mts';
import { smokeExitCode } from '../checks/evaluate.mts';
import { runBackup } from '../backup/backup.mts';
import { install, planFor, resolveMode, scheduleContext } from '../schedules/install.mts';
import { schedulePaths } from '../schedules/net.mts';
import type { SchedulePaths } from '../schedules/plan.mts';
import { ASKED, invalidAnswer, isSecretKey, planEnvFile, type AskedKey, type EnvFilePlan, type OperatorInput } from './env-file.mts';
import { firstProblem, nothingToDo, planSetup, type DirObservation, type SetupStep } from './plan.mts';
import { ask, type Terminal } from './prompt.mts';

export interface SetupOptions {
  envFile: string;
  /** the example the env file starts from (default: the toolkit's .env.prod.example) */
  example?: string;
  input: OperatorInput;
  /** a file holding the bot token alone ('-': standard input) */
  botTokenFile?: string;
  /** non-secret KEY=VALUE lines for the env file */
  settingsFile?: string;
  dryRun: boolean;
  terminal: Terminal | null;
  log: Logger;
  /** the flags' paths; what they leave out comes from the env file (LAZYFLOW_UNIT_DIR, LAZYFLOW_CRON_DIR), as for the rollout's safety net */
  schedules: { mode: string; paths: Partial<SchedulePaths> };
  /** smoke: PEM root of a private CA */
  ca?: string;
}

export interface SetupResult {
  exitCode: number;
  steps: SetupStep[];
  /** the env file as setup left it */
  env?: OpsEnv;
  changed: SetupStep['step'][];
}

/** what setup tells the operator before each question */
const GUIDANCE: Record<AskedKey, { prompt: string; before?: string[]; secret?: boolean }> = {
  DOMAIN: { prompt: 'Domain of the bot (its A record points at this VPS): ' },
  ACME_EMAIL: { prompt: "E-mail for Let's Encrypt's certificate notices: " },
  BOT_TOKEN: {
    prompt: 'Bot token (input hidden): ',
    secret: true,
    before: ['The bot token comes from @BotFather in Telegram: /newbot, then the token it answers (123456789:AA...).'],
  },
  ADMIN_CHAT_ID: {
    prompt: 'Admin chat id for deploy and alert messages (Enter for none): ',
    before: ['The chat id: send your bot a message, then see RUNBOOK "First deploy", step 1 (getUpdates), before this first deploy.'],
  },
};

function readText(file: string, what: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EACCES') throw new ConfigError(`cannot read ${what} ${file}: permission denied`, { file, hint: `run setup with sudo: sudo node scripts/setup.mts ...` });
    throw e;
  }
}

/** --settings: non-secret KEY=VALUE lines (a secret there would sit in a file the operator commits). */
export function readSettings(file: string): Record<string, string> {
  const text = readText(file, 'settings file');
  if (text === null) throw new UsageError(`settings file ${file} does not exist`, { hint: 'pass the file of non-secret KEY=VALUE lines your app needs (RUNBOOK "Adopting the toolkit")' });
  const values = parseEnvText(text, file);
  const secret = Object.keys(values).filter(isSecretKey);
  if (secret.length) throw new UsageError(`${file} sets ${secret.join(', ')}: secrets never go into a settings file`, { hint: `remove ${secret.length > 1 ? 'them' : 'it'}; setup asks for the bot token, generates WEBHOOK_SECRET, and your app's own secrets go into the env file (sudoedit)` });
  return values;
}

function readBotToken(file: string): string {
  const text = file === '-' ? fs.readFileSync(0, 'utf8') : readText(file, 'bot token file');
  if (text === null) throw new UsageError(`bot token file ${file} does not exist`);
  return text.trim();
}

/** what the operator gave, validated: a bad flag is a usage error before anything happens */
function validateInput(input: OperatorInput): void {
  const given: [AskedKey, string | undefined][] = [['DOMAIN', input.domain], ['ACME_EMAIL', input.acmeEmail], ['BOT_TOKEN', input.botToken], ['ADMIN_CHAT_ID', input.adminChatId]];
  for (const [k, v] of given) {
    if (v === undefined) continue;
    const why = invalidAnswer(k, v);
    if (why) throw new UsageError(`${k}: expected ${why}${isSecretKey(k) ? '' : `, got "${v}"`}`);
  }
}

async function askMissing(o: SetupOptions, plan: EnvFilePlan, input: OperatorInput): Promise<OperatorInput> {
  const next = { ...input };
  const field: Record<AskedKey, keyof OperatorInput> = { DOMAIN: 'domain', ACME_EMAIL: 'acmeEmail', BOT_TOKEN: 'botToken', ADMIN_CHAT_ID: 'adminChatId' };
  for (const k of ASKED.filter((x) => plan.ask.includes(x))) {
    const g = GUIDANCE[k];
    for (const line of g.before ?? []) o.terminal!.output.write(`${line}\n`);
    (next as Record<string, string>)[field[k]] = await ask(o.terminal!, { prompt: g.prompt, secret: g.secret, invalid: (a) => invalidAnswer(k, a) });
  }
  return next;
}

const flagOf: Record<AskedKey, string> = { DOMAIN: '--domain', ACME_EMAIL: '--acme-email', BOT_TOKEN: '--bot-token-file', ADMIN_CHAT_ID: '--admin-chat-id' };

function observeDirs(env: OpsEnv): DirObservation[] {
  const l = env.layout;
  return [
    { path: l.root, appOwned: false },
    { path: l.data, appOwned: true },
    { path: l.uploads, appOwned: true },
    { path: l.backups, appOwned: false },
    { path: l.logs, appOwned: false },
  ].map((d) => {
    try {
      const st = fs.statSync(d.path);
      return { ...d, exists: true, uid: st.uid, entries: st.isDirectory() ? fs.readdirSync(d.path).length : 1 };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ...d, exists: false };
      throw e;
    }
  });
}

function applyDirs(step: SetupStep) {
  for (const d of step.dirs ?? []) {
    if (d.create) fs.mkdirSync(d.path, { recursive: true, mode: d.chown ? 0o750 : 0o755 });
    if (d.chown) {
      fs.chownSync(d.path, APP_UID, APP_GID);
      fs.chmodSync(d.path, 0o750);
    }
    fsyncDir(path.dirname(d.path));
  }
}

export async function runSetup(o: SetupOptions): Promise<SetupResult> {
  const { log } = o;
  const envFile = path.resolve(o.envFile);
  const example = readText(o.example ?? path.join(REPO_ROOT, '.env.prod.example'), 'example env file');
  if (example === null) throw new ConfigError(`the toolkit's example env file is missing`, { file: o.example ?? path.join(REPO_ROOT, '.env.prod.example'), hint: 'restore it from git: git checkout -- .env.prod.example' });
  let input: OperatorInput = { ...o.input };
  if (o.settingsFile) input.settings = readSettings(o.settingsFile);
  if (o.botTokenFile) input.botToken = readBotToken(o.botTokenFile);
  validateInput(input);
  const existing = readText(envFile, 'env file');
  const generate = () => randomBytes(32).toString('hex');

  let envPlan = planEnvFile({ example, existing, input, generate });
  if (envPlan.ask.length && !o.dryRun) {
    if (!o.terminal) {
      throw new UsageError(`setup needs ${envPlan.ask.join(', ')} and there is no terminal to ask on`, { hint: `run it in a terminal, or pass ${envPlan.ask.map((k) => flagOf[k]).join(', ')}` });
    }
    input = await askMissing(o, envPlan, input);
    envPlan = planEnvFile({ example, existing, input, generate });
  }
  // the dry run asks nothing: what it would ask is said, and the rest of the plan is shown without it
  const asked = o.dryRun ? envPlan.ask : [];
  if (asked.length) envPlan = { ...envPlan, actions: envPlan.actions.filter((a) => !(a.action === 'missing' && asked.includes(a.key as AskedKey))) };
  const text = envPlan.text ?? existing!;
  const mode = existing === null ? 0o600 : fs.statSync(envFile).mode & 0o777;
  const planned = opsEnvFromText(envFile, text, 0o600);

  const head = await gitState((await releaseLayout(planned.projectDir)).root).catch((e: Error) => {
    // a checkout cloned by root and read by another user (or the reverse): git refuses it
    if (/dubious ownership/.test(e.message)) throw new ConfigError(e.message, { hint: `sudo git config --global --add safe.directory ${(e.message.match(/'([^']+)'/) ?? [])[1] ?? planned.projectDir}` });
    throw e;
  });
  const live = await liveApp(planned);
  const sMode = resolveMode(o.schedules.mode);
  const sPaths: SchedulePaths = { ...schedulePaths(planned.values), ...o.schedules.paths };
  const sPlan = planFor(scheduleContext(planned), sMode, sPaths);
  const steps = planSetup({
    envFile: envPlan,
    envFilePath: envFile,
    envFileMode: existing === null ? undefined : mode,
    stateDirs: observeDirs(planned),
    appUid: APP_UID,
    live: live ? { tag: live.tag, status: live.status, health: live.health } : null,
    headTag: appTagFor(head, new Date()),
    newestBackup: newestBackup(planned.layout.backups)?.id ?? null,
    schedules: { write: sPlan.write.length, remove: sPlan.remove.length, mode: sMode },
  });

  if (asked.length) log.info(`would ask on the terminal for ${asked.join(', ')} (or pass ${asked.map((k) => flagOf[k]).join(', ')})`);
  for (const s of steps) {
    const line = `${s.step}: ${s.apply ? (o.dryRun ? 'would ' : '') : ''}${s.what}`;
    if (s.problem) log.error(line);
    else if (s.apply) log.info(line);
    else log.ok(line);
  }
  const problem = firstProblem(steps);
  if (problem) throw Object.assign(new ToolkitError(`setup stopped before changing anything: ${problem.step}`, { hint: problem.problem!.fix }), { exitCode: problem.problem!.exitCode });
  if (o.dryRun) return { exitCode: 0, steps, changed: [] };

  const changed: SetupStep['step'][] = [];
  const step = (name: SetupStep['step']) => steps.find((s) => s.step === name)!;

  if (step('env-file').apply) {
    writeTextAtomic(envFile, text, { fileMode: 0o600, dirMode: 0o755 });
    changed.push('env-file');
    log.ok(`wrote ${envFile} (mode 600)`);
  }
  const env = loadOpsEnv(envFile);
  if (step('state-dir').apply) {
    applyDirs(step('state-dir'));
    changed.push('state-dir');
  }
  log.setOpsLog(env.layout.opsLog);

  if (step('rollout').apply) {
    const res = await runRollout({ env, log, smoke: { ca: o.ca } });
    changed.push('rollout');
    if (res.exitCode !== 0) throw Object.assign(new StepError(`the first rollout failed: ${res.reason ?? res.result}`, { step: 'rollout', hint: `fix what it names, then run setup again (it goes on from here): sudo node scripts/setup.mts --config ${o.envFile}` }), { exitCode: res.exitCode });
  }
  if (step('backup').apply) {
    const b = await runBackup({ ctx: env, reason: 'manual', log });
    changed.push('backup');
    log.ok(`first backup ${b.id}`);
  }
  if (step('schedules').apply) {
    const r = await install(scheduleContext(env), sMode, sPaths, log);
    changed.push('schedules');
    if (r.pending) log.warn(`systemd does not run here: the units are written; where it runs: ${r.pending}`);
  }

  const report = await runSmoke(env, { log, ca: o.ca });
  const rows = report.results.map((r) => ({ check: r.name, status: r.status.toUpperCase(), detail: r.detail }));
  log.table(rows, ['check', 'status', 'detail']);
  const code = smokeExitCode(report.results);
  if (code !== 0) {
    log.error(`smoke FAILED: ${report.results.filter((r) => r.status === 'fail').map((r) => `${r.name}: ${r.detail}`).join('; ')}`);
    return { exitCode: code, steps, env, changed };
  }
  log.ok(nothingToDo(steps) ? `nothing to change: ${env.appUrl} is set up, smoke passed` : `setup done: ${env.appUrl} is live, smoke passed (${changed.join(', ')})`);
  return { exitCode: 0, steps, env, changed };
}
