#!/usr/bin/env node
// From a prepared VPS to a green, safe deployment in one command: the env file (asked on the
// terminal, secrets generated), STATE_DIR, the first rollout, the first backup, the schedules,
// smoke and the status screen. Re-run, it changes nothing that is right.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { runMain } from './lib/cli/main.mts';
import type { CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { SCHEDULE_PATH_OPTIONS } from './lib/schedules/install.mts';
import { runSetup } from './lib/setup/run.mts';
import { terminal } from './lib/setup/prompt.mts';

export const spec: CommandSpec = {
  name: 'setup.mts',
  summary: 'one command from a prepared VPS to a green, safe deployment: env file, STATE_DIR, first rollout, first backup, schedules, smoke, status',
  usage: [
    'sudo node scripts/setup.mts                     # asks for the domain, e-mail, bot token and admin chat id',
    'sudo node scripts/setup.mts --dry-run           # what it would do; changes nothing',
    'sudo node scripts/setup.mts --domain bot.example.org --acme-email ops@example.org --admin-chat-id 123456789 --bot-token-file /root/bot-token',
  ],
  options: [
    sharedOption('config'),
    { name: 'domain', type: 'string', arg: '<name>', describe: 'the bot\'s domain, whose A/AAAA records point at this VPS (asked when not given)' },
    { name: 'acme-email', type: 'string', arg: '<address>', describe: "contact for Let's Encrypt's certificate notices (asked when not given)" },
    { name: 'admin-chat-id', type: 'string', arg: '<id|none>', describe: 'chat that receives deploy and alert messages; none: no messages (asked when not given)' },
    { name: 'bot-token-file', type: 'string', arg: '<file|->', describe: 'file holding the bot token alone (- : standard input); never the token itself on a command line (asked, hidden, when not given)' },
    { name: 'settings', type: 'string', arg: '<file>', describe: "non-secret KEY=VALUE lines for the env file: your app's FRONTEND_*, READY_PATH, own keys (secrets are refused)" },
    sharedOption('dryRun', 'secrets shown as their length, nothing asked'),
    { name: 'ca', type: 'string', arg: '<pem>', describe: 'trust this root for the site certificate in the gates and smoke (private CA)' },
    { name: 'schedules-mode', type: 'string', arg: '<mode>', default: 'auto', choices: ['auto', 'systemd', 'cron'], describe: 'as schedules.mts --mode' },
    ...SCHEDULE_PATH_OPTIONS,
    sharedOption('quiet', 'the questions are still asked'),
  ],
  details: [
    'Steps, each skipped when what is there is right (and said so):',
    '  env-file   from .env.prod.example, mode 600, written atomically: your answers, APP_URL, ALLOWED_ORIGINS and',
    '             MINI_APP_URL from the domain, WEBHOOK_SECRET generated. An existing file is completed, never',
    '             overwritten: a value that differs from what you give now is reported and setup stops (exit 2).',
    '  state-dir  STATE_DIR with data/ and uploads/ owned by uid 1000 (mode 750), backups/, logs/',
    '  rollout    the first rollout (preflight, build, contract gate, stack, gates) when no app container exists',
    '  backup     the first backup when there is none',
    '  schedules  backup, offsite, drill, watch and recovery timers (as schedules.mts --install)',
    '  smoke      every smoke check, then the status screen (status.mts)',
    'Secrets (the bot token, generated secrets) are never printed, logged or taken from a command line.',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  set up, smoke passed (also: nothing needed changing)',
    '  1  a step failed (the rollout, the backup, smoke), or a state directory belongs to someone else',
    '  2  usage or config error: a bad answer or flag, a value that conflicts with the env file, no terminal to ask on',
  ].join('\n'),
};

runMain(spec, async ({ values: v }, log) => {
  const chat = v['admin-chat-id'] as string | undefined;
  const res = await runSetup({
    envFile: sharedValues(v).config,
    input: {
      domain: v.domain as string | undefined,
      acmeEmail: v['acme-email'] as string | undefined,
      adminChatId: chat === 'none' ? '' : chat,
    },
    botTokenFile: v['bot-token-file'] as string | undefined,
    settingsFile: v.settings as string | undefined,
    dryRun: sharedValues(v).dryRun,
    terminal: terminal(),
    log,
    schedules: { mode: String(v['schedules-mode']), paths: { ...(v['unit-dir'] ? { unitDir: path.resolve(String(v['unit-dir'])) } : {}), ...(v['cron-dir'] ? { cronDir: path.resolve(String(v['cron-dir'])) } : {}) } },
    ca: v.ca as string | undefined,
  });
  if (res.env && !sharedValues(v).quiet) {
    // the status screen, as status.mts prints it (read-only)
    const args = [path.join(import.meta.dirname, 'status.mts'), '--config', res.env.file, ...(v.ca ? ['--ca', String(v.ca)] : [])];
    spawnSync(process.execPath, args, { stdio: 'inherit' });
  }
  return res.exitCode;
});
