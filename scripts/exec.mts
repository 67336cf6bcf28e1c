#!/usr/bin/env node
// A shell, or one command, in the running app container: its user, its environment, its files.
//   node scripts/exec.mts --config .env.prod                 # sh
//   node scripts/exec.mts --config .env.prod -- bun --version
import { runMain } from './lib/cli/main.mts';
import { StepError } from './lib/cli/errors.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';

export const spec: CommandSpec = {
  name: 'exec.mts',
  summary: 'a shell, or one command, in the running app container (as the app user, with its environment)',
  usage: ['node scripts/exec.mts --config .env.prod', 'node scripts/exec.mts --config .env.prod -- <command> [args...]'],
  options: [sharedOption('config'), sharedOption('dryRun', 'here: print the docker command')],
  maxPositionals: Infinity,
  details: [
    'Without a command: sh, interactive when stdin is a terminal. The command runs in the container the',
    'running release started (`docker compose exec`), never a new one: what it writes to /app/data and',
    '/app/uploads is live data (take a backup first: node scripts/backup.mts). Put -- before a command whose',
    'own flags start with "-".',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  the command (or shell) exited 0',
    '  1  the command exited non-zero (its status is printed), or no app container is running',
    '  2  usage or config error (bad flag, env file missing or invalid)',
  ].join('\n'),
};

await runMain(spec, async ({ values: v, positionals }, log) => {
  const o = sharedValues(v);
  // loaded only now: --help and a usage error answer at once
  const { loadOpsEnv } = await import('./lib/config/env.mts');
  const { composeCtx, composeEnv, execArgs } = await import('./lib/commands/compose.mts');
  const { liveApp } = await import('./lib/docker/app-container.mts');
  const { dockerInteractive } = await import('./lib/docker/run.mts');
  const env = loadOpsEnv(o.config);
  const command = positionals.length ? positionals : ['sh'];
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const argv = execArgs(composeCtx(env), command, { tty });
  if (o.dryRun) {
    log.out(['docker', ...argv].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' '));
    return 0;
  }
  const app = await liveApp(env);
  if (!app || app.status !== 'running') {
    throw new StepError(`no running app container in project ${env.project}${app ? ` (${app.status})` : ''}`, { step: 'exec', hint: `node scripts/status.mts --config ${o.config}` });
  }
  const code = await dockerInteractive(argv, { env: composeEnv(env.values) });
  if (code !== 0) {
    log.error(`${command.join(' ')} exited ${code} in the app container`);
    return 1;
  }
  return 0;
});
