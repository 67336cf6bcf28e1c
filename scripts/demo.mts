#!/usr/bin/env node
// `npm run demo`: the local try-out as a real rollout. Creates .env.local (mode 600, local mode:
// DOMAIN=localhost with Caddy's internal CA, no Telegram token) and STATE_DIR ./.state owned by
// uid 1000 when missing, then runs scripts/lib/rollout.mts on it and prints how to open and trust it.
import fs from 'node:fs';
import path from 'node:path';
import { $ } from 'zx';
import { runMain } from './lib/cli/main.mts';
import type { CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { loadOpsEnv, REPO_ROOT } from './lib/config/env.mts';
import { composeArgs, composeEnv } from './lib/commands/compose.mts';
import { runRollout } from './lib/release/rollout.mts';
import { generateLocalSecrets, localEnvText, missingLocalLines } from './lib/config/local-mode.mts';
import { LOCAL_DEFAULT_SECRET } from './lib/checks/preflight.mts';

export const APP_UID = 1000;

export const spec: CommandSpec = {
  name: 'demo.mts',
  summary: 'bring the stack up locally on https://localhost (Caddy internal CA, no Telegram token) with a real rollout',
  usage: ['npm run demo', 'node scripts/demo.mts [--config .env.local] [--https-port 8443 --http-port 8080]', 'node scripts/demo.mts --down'],
  options: [
    sharedOption('config', undefined, { default: '.env.local', describe: 'local env file; created (mode 600) when missing' }),
    { name: 'https-port', type: 'number', default: 443, describe: 'HTTPS port written into a new env file' },
    { name: 'http-port', type: 'number', default: 80, describe: 'HTTP port written into a new env file' },
    { name: 'down', type: 'boolean', describe: 'stop and remove the demo containers (STATE_DIR and certificates are kept)' },
    sharedOption('dryRun', 'here: the rollout plan'),
    sharedOption('quiet'),
  ],
  details: 'Local mode: no webhook is registered and Telegram checks are skipped. Uncommitted changes are deployed with a -dirty tag.',
};

export function ensureStateDir(stateDir: string): string[] {
  const made: string[] = [];
  for (const sub of ['data', 'uploads', 'backups', 'logs']) {
    const d = path.join(stateDir, sub);
    if (!fs.existsSync(d)) {
      fs.mkdirSync(d, { recursive: true, mode: sub === 'data' || sub === 'uploads' ? 0o750 : 0o755 });
      made.push(d);
    }
  }
  for (const sub of ['data', 'uploads']) {
    const d = path.join(stateDir, sub);
    const st = fs.statSync(d);
    if (st.uid !== APP_UID) {
      try {
        fs.chownSync(d, APP_UID, APP_UID);
      } catch {
        throw new Error(`${d} must be owned by uid ${APP_UID} (the app user): run  sudo chown ${APP_UID}:${APP_UID} ${d}`);
      }
    }
  }
  return made;
}

runMain(spec, async ({ values: v }, log) => {
  const file = path.resolve(sharedValues(v).config);
  if (v.down) {
    const env = loadOpsEnv(file);
    await $({ env: composeEnv(env.values), stdio: 'inherit' })`docker ${composeArgs(env, 'down', '--remove-orphans')}`;
    log.ok(`demo stopped; state kept in ${env.stateDir} (remove it and the caddy volumes with: docker compose --env-file ${file} down -v && rm -rf ${env.stateDir})`);
    return 0;
  }
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, localEnvText({ httpsPort: Number(v['https-port']), httpPort: Number(v['http-port']), secrets: generateLocalSecrets() }), { mode: 0o600, flag: 'wx' });
    log.info(`created ${path.relative(process.cwd(), file) || file} (mode 600, local mode, loopback only, its own secrets)`);
  } else {
    // a demo file from before: its own secrets and the loopback address, added once, kept from then on
    const add = missingLocalLines(loadOpsEnv(file, { projectDir: REPO_ROOT }).values, generateLocalSecrets(), LOCAL_DEFAULT_SECRET);
    if (add.length) {
      fs.chmodSync(file, 0o600);
      fs.appendFileSync(file, `\n# added by npm run demo: this install's own secrets, published on the loopback only\n${add.join('\n')}\n`);
      log.info(`added ${add.map((l) => l.split('=')[0]).join(', ')} to ${path.relative(process.cwd(), file) || file}`);
    }
  }
  const env = loadOpsEnv(file, { projectDir: REPO_ROOT });
  log.setOpsLog(env.layout.opsLog);
  for (const d of ensureStateDir(env.stateDir)) log.info(`created ${d}`);

  const res = await runRollout({ env, log, allowDirty: true, dryRun: Boolean(v['dry-run']), keepImages: 3 });
  if (res.plan) {
    res.plan.forEach((s, i) => log.out(`${String(i + 1).padStart(2)}. [${s.phase}] ${s.what}${s.argv ? `\n      $ ${s.argv.join(' ')}` : ''}`));
    return 0;
  }
  if (res.exitCode !== 0) return res.exitCode;

  const port = Number(env.values.HTTPS_PORT || 443);
  const url = port === 443 ? 'https://localhost' : `https://localhost:${port}`;
  const rootFile = path.join(env.stateDir, 'caddy-root.crt');
  const rel = path.relative(process.cwd(), file);
  const shown = rel && !rel.startsWith('..') ? rel : file;
  const envFlag = path.basename(file) === '.env.local' && path.dirname(file) === process.cwd() ? '' : ` --config ${shown}`;
  const root = await $({ quiet: true, nothrow: true, env: composeEnv(env.values) })`docker ${composeArgs(env, 'exec', '-T', 'caddy', 'cat', '/data/caddy/pki/authorities/local/root.crt')}`;
  if (root.exitCode === 0) fs.writeFileSync(rootFile, root.stdout);
  log.out(
    [
      '',
      `The stack runs on ${url}  (release ${res.appTag}, local mode: no Telegram token)`,
      '',
      `Caddy signs localhost with its own CA; its root is in ${rootFile}. To trust it:`,
      `  curl --cacert ${rootFile} ${url}/health`,
      `  sudo cp ${rootFile} /usr/local/share/ca-certificates/lazyflow-caddy-local.crt && sudo update-ca-certificates   # Debian/Ubuntu`,
      '  (browsers: import it as an authority, or accept the warning once)',
      '',
      `Smoke:     node scripts/smoke.mts --config ${shown}`,
      `Releases:  node scripts/rollback.mts --config ${shown} --list`,
      `Stop:      node scripts/demo.mts --down${envFlag}`,
      '',
    ].join('\n'),
  );
  return 0;
});
