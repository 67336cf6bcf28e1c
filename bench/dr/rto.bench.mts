// RTO from nothing (see bench/dr/run.mts): a stack with DR_MIB MiB of data goes offsite, then the
// machine state is destroyed and `recover-vps.mts` brings it back; its own phase table and the wall
// time are written to DR_OUT.
import { expect, it } from 'vitest';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startStack, e2eImages } from '../../test/support/stack.ts';
import { startBackend } from '../../test/support/offsite-backends.ts';
import { ReleaseSource } from '../../test/support/release-source.mts';
import { mustRun, repoRoot, run, runScript } from '../../test/support/run.ts';

const mib = Number(process.env.DR_MIB ?? 1024);
const out = process.env.DR_OUT ?? '/tmp/benchmarks-dr.md';

it(`RTO from an empty machine state, ${mib} MiB`, async () => {
  const be = await startBackend('rest');
  const images = e2eImages();
  const appImage = `lzf-bench-dr-app-${randomBytes(3).toString('hex')}`;
  await mustRun('docker', ['tag', `${images.appImage}:${images.appTag}`, `${appImage}:${images.appTag}`]);
  const stack = await startStack({ name: 'dr', env: { ...be.env, APP_IMAGE: appImage, OFFSITE_TIMEOUT: '1800' } });
  const src = ReleaseSource.create(repoRoot, 'dr');
  const script = (name: string, args: string[], timeoutMs = 1_800_000) => runScript(name, ['--config', stack.envFile, ...args], { timeoutMs });
  try {
    expect((await script('offsite.mts', ['--init'])).code).toBe(0);
    // the data: incompressible rows in a table of their own (the app ignores it; backup, restore and
    // verify treat the whole file), written next to the running app as another SQLite writer
    const dbPath = join(stack.stateDir, 'data', 'lazyflow.db');
    const db = new Database(dbPath, { timeout: 10_000 });
    db.exec('CREATE TABLE IF NOT EXISTS bench_fill (id INTEGER PRIMARY KEY, blob BLOB NOT NULL)');
    const ins = db.prepare('INSERT INTO bench_fill (blob) VALUES (?)');
    const chunk = 64 * 1024;
    for (let done = 0; done < mib * 2 ** 20; ) {
      db.transaction(() => {
        for (let i = 0; i < 256; i++, done += chunk) ins.run(randomBytes(chunk));
      })();
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const dbBytes = statSync(dbPath).size;
    const release = src.head.slice(0, 12);
    const t0 = performance.now();
    const b = await script('backup.mts', ['--json', '--quiet', '--app-tag', release]);
    expect(b.code, b.stderr).toBe(0);
    const backupS = (performance.now() - t0) / 1000;

    // the disaster: containers, their volumes, the app images and STATE_DIR are gone
    await stack.mustCompose('rm', '-s', '-f', '-v', 'app', 'caddy');
    for (const v of ['caddy_data', 'caddy_config']) await run('docker', ['volume', 'rm', '-f', `${stack.project}_${v}`]);
    const refs = (await run('docker', ['images', appImage, '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((l) => l && !l.endsWith(':<none>'));
    if (refs.length) await mustRun('docker', ['rmi', ...refs]);
    rmSync(stack.stateDir, { recursive: true, force: true });

    const t1 = performance.now();
    const r = await runScript('recover-vps.mts', ['--config', stack.envFile, '--source', src.dir, '--ca', stack.caPem, '--no-notify', '--json'], { timeoutMs: 1_800_000 });
    const wallS = (performance.now() - t1) / 1000;
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const res = JSON.parse(r.stdout) as { phases: Record<string, number>; release: string };
    const rows = Object.entries(res.phases).map(([p, ms]) => `| ${p} | ${(ms / 1000).toFixed(1)} |`);
    const table = [
      `RTO bench ${new Date().toISOString()}: database ${(dbBytes / 2 ** 20).toFixed(0)} MiB (${mib} MiB of incompressible rows), restic to rclone serve restic on 127.0.0.1;`,
      `backup + upload before the disaster ${backupS.toFixed(1)} s; recover-vps.mts wall time ${wallS.toFixed(1)} s (release ${res.release}).`,
      '',
      '| phase | s |',
      '|---|---:|',
      ...rows,
    ].join('\n');
    writeFileSync(out, `${table}\n`);
    console.log(`\n${table}\n\nwritten to ${out}`);
  } finally {
    await stack.down();
    await be.destroy();
    src.cleanup();
    const left = (await run('docker', ['images', appImage, '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((l) => l && !l.endsWith(':<none>'));
    if (left.length) await run('docker', ['rmi', ...left]);
  }
});
