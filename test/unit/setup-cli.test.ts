// setup.mts refuses bad input before it touches anything: no env file appears, exit 2, the message
// names what is wrong and what to do. (Everything after the input is the e2e test's: test/e2e/setup.test.ts.)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repoRoot = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'lzf-setup-cli-'));
const envFile = join(dir, '.env.prod');
const setup = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'scripts', 'setup.mts'), '--config', envFile, ...args], { encoding: 'utf8', input: '', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('setup.mts: bad input changes nothing', () => {
  it.each([
    ['a secret in the settings file', () => { writeFileSync(join(dir, 's.env'), 'FRONTEND_DIR=frontend\nBOT_TOKEN=123456789:AAbbccddeeffgghhiijjkkllmm\n'); return ['--settings', join(dir, 's.env')]; }, /sets BOT_TOKEN: secrets never go into a settings file/],
    ['a URL for the domain', () => ['--domain', 'https://bot.lazyflow.dev'], /DOMAIN: expected a domain name such as bot\.example\.org \(no https:\/\/, no path\), got "https:\/\/bot\.lazyflow\.dev"/],
    ['a bad token file: its content is never echoed', () => { writeFileSync(join(dir, 'token'), 'not-a-token-but-secret-XYZ\n'); return ['--domain', 'bot.lazyflow.dev', '--bot-token-file', join(dir, 'token')]; }, /^(?![\s\S]*XYZ)[\s\S]*BOT_TOKEN: expected the token @BotFather sent/],
    ['no terminal and nothing given', () => [], /setup needs DOMAIN, ACME_EMAIL, BOT_TOKEN, ADMIN_CHAT_ID and there is no terminal to ask on[\s\S]*pass --domain, --acme-email, --bot-token-file, --admin-chat-id/],
  ] as const)('%s: exit 2, no env file', (_n, args, says) => {
    const r = setup(...args());
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(says);
    expect(existsSync(envFile)).toBe(false);
  }, 120_000); // a Node start with zx: seconds on a loaded machine

  it('--help names every flag and the exit codes', () => {
    const r = setup('--help');
    expect(r.status).toBe(0);
    for (const f of ['--domain', '--acme-email', '--admin-chat-id', '--bot-token-file', '--settings', '--dry-run']) expect(r.stdout).toContain(f);
    expect(r.stdout).toMatch(/Exit status:\n {2}0 {2}set up, smoke passed/);
  }, 120_000);
});
