// smoke.mts against the real stack (Pebble certificate, fake Bot API): all checks pass on a healthy
// stack, and when something really breaks the run fails and names the check: stopped jobs, a
// missing security header, an uploads directory exposed through Caddy.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describeDocker } from '../support/docker.ts';
import { startStack, waitFor, type Stack } from '../support/stack.ts';
import { mustRun, repoRoot, run, runScript, type RunResult } from '../support/run.ts';

const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeDocker('smoke: checks that name what broke', () => {
  let stack: Stack;
  const smoke = (...extra: string[]) => runScript('smoke.mts', ['--config', stack.envFile, '--ca', stack.caPem, ...extra], { timeoutMs: 60_000 });
  const results = (r: RunResult) => JSON.parse(r.stdout).results as { name: string; status: string; detail: string }[];
  const statusOf = (r: RunResult, name: string) => results(r).find((x) => x.name === name)!;

  beforeAll(async () => {
    stack = await startStack({ name: 'smoke' });
  });
  afterAll(async () => {
    await stack?.down();
  });

  it('passes on a healthy stack, all checks in seconds, as a table or JSON', async () => {
    await waitFor('the webhook to be registered', async () => stack.fakeBot!.webhookInfo(stack.botToken).url.endsWith(stack.webhookSecret), 30_000);
    const r = await smoke('--json');
    expect(r.code, explain(r)).toBe(0);
    const rs = results(r);
    expect(rs.map((x) => x.name)).toEqual(['containers', 'health', 'tls', 'redirect', 'headers', 'cors', 'webhook', 'uploads', 'telegram', 'database', 'jobs', 'dead-letters', 'contract', 'disk', 'backups', 'logs', 'hardening', 'miniapp', 'frontend', 'routes', 'safety-net']);
    for (const x of rs) expect(['pass', 'warn'], `${x.name}: ${x.detail}`).toContain(x.status);
    expect(statusOf(r, 'hardening')).toMatchObject({ status: 'pass', detail: 'app: read-only root, no capabilities, no-new-privileges, user bun; caddy: read-only root, only NET_BIND_SERVICE, no-new-privileges' });
    expect(statusOf(r, 'tls')).toMatchObject({ status: 'pass' });
    expect(statusOf(r, 'tls').detail).toMatch(/Pebble/);
    expect(statusOf(r, 'telegram')).toMatchObject({ status: 'pass' });
    expect(statusOf(r, 'backups')).toMatchObject({ status: 'warn' }); // no backup taken on this stack
    expect(statusOf(r, 'dead-letters')).toMatchObject({ status: 'pass', detail: 'no dead letters' });
    // the reference app keeps every recommended contract item: no notice
    expect(statusOf(r, 'contract')).toMatchObject({ status: 'pass' });
    expect(JSON.parse(r.stdout).ms).toBeLessThan(10_000);
    const table = await smoke();
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^check\s+status/m);
    expect(table.stdout).toMatch(/^tls\s+PASS/m);
    // --only / --skip select checks
    const only = await smoke('--json', '--only', 'health,tls');
    expect(results(only).map((x) => x.name)).toEqual(['health', 'tls']);
    const skip = await smoke('--json', '--skip', 'telegram');
    expect(results(skip).some((x) => x.name === 'telegram')).toBe(false);
    const bad = await smoke('--only', 'nope');
    expect(bad.code).toBe(2);
  });

  it('without the private root the TLS check fails and says to pass --ca', async () => {
    const r = await runScript('smoke.mts', ['--config', stack.envFile, '--json', '--only', 'tls']);
    expect(r.code).toBe(1);
    expect(statusOf(r, 'tls').detail).toMatch(/does not verify.*--ca/);
  });

  it('stopped background jobs fail the jobs check', async () => {
    const dbFile = join(stack.stateDir, 'data', 'lazyflow.db');
    const db = new Database(dbFile, { timeout: 5000 });
    try {
      // every heartbeat write now aborts: the job keeps running but never ticks
      db.exec(`CREATE TRIGGER smoke_test_stop_jobs_u BEFORE UPDATE ON job_heartbeats BEGIN SELECT RAISE(ABORT, 'jobs stopped by the smoke test'); END;
               CREATE TRIGGER smoke_test_stop_jobs_i BEFORE INSERT ON job_heartbeats BEGIN SELECT RAISE(ABORT, 'jobs stopped by the smoke test'); END;`);
      await sleep(4000);
      const r = await smoke('--json', '--jobs-max-age', '3');
      expect(r.code, explain(r)).toBe(1);
      expect(statusOf(r, 'jobs')).toMatchObject({ status: 'fail' });
      expect(statusOf(r, 'jobs').detail).toMatch(/stalled/);
      expect(results(r).filter((x) => x.status === 'fail').map((x) => x.name)).toEqual(['jobs']);
      const table = await smoke('--jobs-max-age', '3');
      expect(table.code).toBe(1);
      expect(table.stderr).toMatch(/smoke FAILED \(jobs\)/);
    } finally {
      db.exec('DROP TRIGGER IF EXISTS smoke_test_stop_jobs_u; DROP TRIGGER IF EXISTS smoke_test_stop_jobs_i;');
      db.close();
    }
    await waitFor('jobs to tick again', async () => (await smoke('--json', '--only', 'jobs', '--jobs-max-age', '3')).code === 0, 20_000, 500);
  });

  it('a missing security header fails the headers check', async () => {
    const [caddy] = await stack.containers('caddy');
    const original = readFileSync(join(repoRoot, 'docker/caddy/Caddyfile'), 'utf8');
    const broken = join(stack.runDir, 'Caddyfile.noheader');
    expect(original).toContain('X-Content-Type-Options "nosniff"');
    writeFileSync(broken, original.replace(/^\s*X-Content-Type-Options "nosniff"\s*$/m, ''));
    // Caddy's root filesystem is read-only: the broken config goes to its /tmp (a tmpfs), and the
    // image's own /etc/caddy/Caddyfile, never changed, is what it reloads afterwards.
    const reload = async (config: string) => {
      await mustRun('docker', ['exec', caddy, 'caddy', 'reload', '--config', config, '--adapter', 'caddyfile']);
    };
    try {
      await mustRun('docker', ['exec', '-i', caddy, 'sh', '-c', 'cat > /tmp/Caddyfile'], { input: readFileSync(broken, 'utf8') });
      await reload('/tmp/Caddyfile');
      const r = await smoke('--json');
      expect(r.code, explain(r)).toBe(1);
      expect(statusOf(r, 'headers')).toMatchObject({ status: 'fail' });
      expect(statusOf(r, 'headers').detail).toMatch(/missing x-content-type-options/);
    } finally {
      await reload('/etc/caddy/Caddyfile');
    }
    expect((await smoke('--json', '--only', 'headers')).code).toBe(0);
  });

  it('an uploads directory exposed through Caddy fails the uploads check', async () => {
    // A classic misconfiguration: the uploads directory mounted under the static site root.
    const override = join(stack.runDir, 'expose-uploads.compose.yml');
    writeFileSync(override, `services:\n  caddy:\n    volumes:\n      - ${join(stack.stateDir, 'uploads')}:/srv/miniapp/u:ro\n`);
    const envExposed = join(stack.runDir, 'env.exposed');
    writeFileSync(envExposed, readFileSync(stack.envFile, 'utf8').replace(/^COMPOSE_FILE=(.*)$/m, `COMPOSE_FILE=$1:${override}`), { mode: 0o600 });
    const up = (envFile: string) => run('docker', ['compose', '--project-directory', repoRoot, '--env-file', envFile, 'up', '-d', '--no-deps', '--wait', '--pull', 'never', '--no-build', 'caddy'], { timeoutMs: 120_000 });
    try {
      const u = await up(envExposed);
      expect(u.code, u.stderr).toBe(0);
      await waitFor('caddy to serve again', async () => (await stack.fetch('/health', { timeoutMs: 5000 })).status === 200, 60_000, 500);
      const r = await smoke('--json');
      expect(r.code, explain(r)).toBe(1);
      const up2 = statusOf(r, 'uploads');
      expect(up2.status).toBe('fail');
      expect(up2.detail).toMatch(/caddy mounts .*uploads at \/srv\/miniapp\/u/);
      // The mount alone fails the check. Smoke's canary (chowned to uid 1000, mode 0640) is not
      // served: Caddy runs without CAP_DAC_OVERRIDE, so root in its container cannot read it.
      expect(up2.detail).not.toMatch(/served an uploaded file/);
    } finally {
      await up(stack.envFile);
    }
    await waitFor('caddy without the mount', async () => (await smoke('--json', '--only', 'uploads')).code === 0, 60_000, 1000);
  });
});
