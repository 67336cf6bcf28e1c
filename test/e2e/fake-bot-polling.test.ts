// The long-polling shape of issue 18, test support: the grammY polling fixture (bot.start() in a real
// container, run as production runs apps: read-only root, no capabilities) polls the fake Bot API on
// the host. While updates arrive it is stopped, left down for a while, and a new container is started
// (stop-first, as a polling bot must be replaced): every update is handled exactly once (the fixture's
// own database, one row per update_id with a count) and confirmed exactly once (the fake). Then a
// second poller: the older of two concurrent getUpdates gets 409, whichever it is.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, dockerMissingReason } from '../support/docker.ts';
import { startFakeBotApi, type FakeBotApi } from '../support/fake-bot-api.ts';
import { repoRoot } from '../support/run.ts';
import { makeMessageUpdate, randomBotToken } from '../support/telegram.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CONFLICT = 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running';

describeDocker('fake Bot API: a grammY poller replaced stop-first while updates arrive', () => {
  const suffix = randomBytes(4).toString('hex');
  const project = `lzf-e2e-poller-${suffix}`;
  const image = `lzf-e2e-grammy-poller:${suffix}`;
  const token = randomBotToken();
  let dir = '';
  let fake: FakeBotApi;
  const compose = (...args: string[]) => run('docker', ['compose', '-p', project, '-f', join(dir, 'compose.json'), ...args], { maxBuffer: 16 << 20 });
  const container = async () => (await compose('ps', '-aq', 'bot')).stdout.trim();
  const inspect = async (format: string) => (await run('docker', ['inspect', '-f', format, await container()])).stdout.trim();
  const handled = () => {
    const db = new Database(join(dir, 'data', 'bot.db'), { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT update_id AS id, handled FROM updates ORDER BY update_id').all() as { id: number; handled: number }[];
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    if (dockerMissingReason) return;
    dir = mkdtempSync(join(tmpdir(), `${project}-`));
    const data = join(dir, 'data');
    // the bun user (uid 1000) owns the bind-mounted data directory, as the toolkit arranges for apps
    mkdirSync(data);
    chownSync(data, 1000, 1000);
    fake = await startFakeBotApi();
    const buildArgs = process.env.BUN_IMAGE ? ['--build-arg', `BUN_IMAGE=${process.env.BUN_IMAGE}`] : [];
    await run('docker', ['build', '-q', '-t', image, ...buildArgs, join(repoRoot, 'test/fixtures/grammy-poller')], { maxBuffer: 16 << 20 });
    const service = {
      image,
      environment: { BOT_TOKEN: token, TELEGRAM_API_ROOT: fake.dockerUrl, POLL_TIMEOUT: '10' },
      extra_hosts: ['host.docker.internal:host-gateway'],
      volumes: [`${data}:/app/data`],
      read_only: true,
      tmpfs: ['/tmp'],
      cap_drop: ['ALL'],
      security_opt: ['no-new-privileges:true'],
      restart: 'no',
    };
    writeFileSync(join(dir, 'compose.json'), JSON.stringify({ services: { bot: service } }, null, 2));
    await compose('up', '-d', '--wait', '--wait-timeout', '60');
  }, 300_000);

  afterAll(async () => {
    if (dockerMissingReason) return;
    if (dir) {
      await compose('down', '-v', '--remove-orphans', '--timeout', '5').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
    await run('docker', ['image', 'rm', '-f', image]).catch(() => {});
    await fake?.stop();
  });

  it('refuses to start in production without BOT_TOKEN (fail-fast config, like the apps it stands for)', async () => {
    const r = await run('docker', ['run', '--rm', '--read-only', '--cap-drop', 'ALL', image]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('BOT_TOKEN is required in production; refusing to start');
  });

  it('handles and confirms every update exactly once across a stop-first replacement', async () => {
    const sent: number[] = [];
    const whileDown: number[] = [];
    let down = false;
    let streaming = true;
    const stream = (async () => {
      for (let i = 0; streaming && i < 2400; i++) { // 50 ms apart: two minutes at the most
        const id = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 4242, text: `note ${i}` }));
        sent.push(id);
        if (down) whileDown.push(id);
        await sleep(50);
      }
    })();
    try {
      await fake.waitFor(() => handled().length >= 10, { timeoutMs: 30_000, message: 'the poller handled no updates' });
      // stop-first: the old poller stops (SIGTERM: grammY ends its poll and confirms what it handled)...
      await compose('stop', '--timeout', '10', 'bot');
      down = true;
      await sleep(1500); // ...updates wait in the queue while no poller runs...
      down = false;
      // ...and a new container takes over
      await compose('up', '-d', '--force-recreate', '--wait', '--wait-timeout', '60', 'bot');
      const after = sent.length;
      await fake.waitFor(() => handled().length >= after + 10, { timeoutMs: 30_000, message: 'the new poller handled nothing new' });
    } finally {
      streaming = false;
      await stream;
    }
    await fake.waitForDrained(token, 30_000);

    expect(whileDown.length).toBeGreaterThan(0);
    const rows = handled();
    expect(rows.map((r) => r.id)).toEqual(sent); // none lost
    expect(rows.filter((r) => r.handled !== 1)).toEqual([]); // none handled twice
    expect(fake.confirmedUpdateIds(token)).toEqual(sent); // each confirmed once, in order
    expect(fake.webhookInfo(token)).toMatchObject({ url: '', pending_update_count: 0 });
  });

  it('a second poller: the older of two concurrent getUpdates gets 409', async () => {
    // another instance asks while the fixture's long poll is pending: the fixture's poll is the older
    // one, gets 409, and grammY's bot.start() ends with it (the fixture exits 1)
    const rival = fetch(`${fake.url}/bot${token}/getUpdates`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ timeout: 50 }),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
    await fake.waitFor(async () => (await inspect('{{.State.Status}}')) === 'exited', { timeoutMs: 20_000, intervalMs: 250, message: 'the fixture kept running' });
    expect(await inspect('{{.State.ExitCode}}')).toBe('1');
    expect((await compose('logs', '--no-color', 'bot')).stdout).toContain(CONFLICT);

    // the fixture starts again while the rival still polls: now the rival is the older one
    await compose('up', '-d', '--wait', '--wait-timeout', '60', 'bot');
    expect(await rival).toEqual({ status: 409, body: { ok: false, error_code: 409, description: CONFLICT } });
    const id = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 4242, text: 'after the conflict' }));
    await fake.waitFor(() => fake.confirmedUpdateIds(token).includes(id) || handled().some((r) => r.id === id), { timeoutMs: 20_000 });
    expect(handled().find((r) => r.id === id)).toEqual({ id, handled: 1 });
  });
});
