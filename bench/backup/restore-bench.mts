// Restore start -> healthy app, for the benchmark database: a real app container (compose service
// `app` only, local mode) on a scratch STATE_DIR, then runRestore (verification before the stop, the
// live state moved aside by rename after it), timed per phase; `hold` = app stopped until healthy.
import { spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadOpsEnv, REPO_ROOT } from '../../scripts/lib/config/env.mts';
import { composeArgs } from '../../scripts/lib/commands/compose.mts';
import { createLogger } from '../../scripts/lib/cli/log.mts';
import { runBackup } from '../../scripts/lib/backup/backup.mts';
import { runRestore } from '../../scripts/lib/restore/restore.mts';

function sh(cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: REPO_ROOT, env: env ?? process.env, maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export async function benchRestore(srcDb: string, log: (m: string) => void): Promise<{ ms: number; detail: string; phases: Record<string, number> }> {
  const suffix = randomBytes(3).toString('hex');
  const tag = `bench-${suffix}`;
  const image = 'lazyflow-bench-app';
  const dir = mkdtempSync(join('/var/tmp', 'lazyflow-restore-bench-'));
  const stateDir = join(dir, 'state');
  for (const d of ['data', 'uploads', 'backups', 'logs']) mkdirSync(join(stateDir, d), { recursive: true });
  const envFile = join(dir, 'env');
  writeFileSync(
    envFile,
    [`COMPOSE_PROJECT_NAME=lzf-bench-${suffix}`, `STATE_DIR=${stateDir}`, `APP_IMAGE=${image}`, `APP_TAG=${tag}`, 'APP_URL=https://localhost', 'ALLOWED_ORIGINS=https://localhost', 'BOT_TOKEN=', `WEBHOOK_SECRET=${randomBytes(24).toString('hex')}`, 'APP_MEMORY_LIMIT=1g', ''].join('\n'),
    { mode: 0o600 },
  );
  const ctx = loadOpsEnv(envFile);
  const quiet = createLogger({ quiet: true });
  try {
    log('restore bench: building the app image (cached layers)');
    sh('docker', ['build', '-q', '-t', `${image}:${tag}`, ...(process.env.BUN_IMAGE ? ['--build-arg', `BUN_IMAGE=${process.env.BUN_IMAGE}`] : []), '.']);
    copyFileSync(srcDb, ctx.layout.db);
    for (const p of [ctx.layout.data, ctx.layout.uploads, ctx.layout.db]) chownSync(p, 1000, 1000);
    log('restore bench: starting the app on the 1 GiB database');
    sh('docker', composeArgs(ctx, 'up', '-d', '--wait', '--no-build', 'app'));
    log('restore bench: backup to restore from');
    const b = await runBackup({ ctx, reason: 'manual', log: quiet });
    log('restore bench: restore');
    const t0 = performance.now();
    const r = await runRestore({ ctx, from: b.id, log: quiet, yes: true, smoke: false, startApp: true });
    const ms = performance.now() - t0;
    const detail = Object.entries(r.phases).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ');
    return { ms, detail, phases: r.phases };
  } finally {
    spawnSync('docker', composeArgs(ctx, 'down', '-v', '--timeout', '5'), { cwd: REPO_ROOT });
    spawnSync('docker', ['rmi', `${image}:${tag}`]);
    rmSync(dir, { recursive: true, force: true });
  }
}
