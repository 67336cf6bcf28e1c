// setup.mts as a plan: the env file completed from the operator's answers, never overwritten, and
// each step decided from what was observed; one row per case.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeAction, envLines, formatValue, invalidAnswer, isSecretKey, planEnvFile, type OperatorInput } from '../../scripts/lib/setup/env-file.mts';
import { nothingToDo, planSetup, type SetupObserved } from '../../scripts/lib/setup/plan.mts';
import { checkEnv } from '../../scripts/lib/checks/preflight.mts';
import { parseEnvText } from '../../scripts/lib/config/env.mts';

const EXAMPLE = readFileSync(join(import.meta.dirname, '..', '..', '.env.prod.example'), 'utf8');
const TOKEN = '123456789:AAbbccddeeffgghhiijjkkllmmnnooppqq';
const ANSWERS: OperatorInput = { domain: 'bot.lazyflow.dev', acmeEmail: 'ops@lazyflow.dev', botToken: TOKEN, adminChatId: '424242' };
const gen = () => 'f'.repeat(8) + '0123456789abcdef'.repeat(3) + 'a'.repeat(8);
const plan = (existing: string | null, input: OperatorInput) => planEnvFile({ example: EXAMPLE, existing, input, generate: gen });
const values = (text: string) => Object.fromEntries([...envLines(text).values()].map((l) => [l.key, l.value]));

describe('setup: the env file', () => {
  it('from nothing: the example with the answers, values derived from DOMAIN, a generated WEBHOOK_SECRET; preflight accepts it', () => {
    const p = plan(null, ANSWERS);
    expect(p.ask).toEqual([]);
    const v = values(p.text!);
    expect(v).toMatchObject({ DOMAIN: 'bot.lazyflow.dev', ACME_EMAIL: 'ops@lazyflow.dev', BOT_TOKEN: TOKEN, ADMIN_CHAT_ID: '424242', APP_URL: 'https://bot.lazyflow.dev', ALLOWED_ORIGINS: 'https://bot.lazyflow.dev', MINI_APP_URL: 'https://bot.lazyflow.dev', WEBHOOK_SECRET: gen(), STATE_DIR: '/srv/lazyflow' });
    // comments and order kept: the same lines as the example except the filled ones
    const changed = p.text!.split('\n').filter((l, i) => l !== EXAMPLE.split('\n')[i]);
    expect(changed.map((l) => l.split('=')[0]).sort()).toEqual(['ACME_EMAIL', 'ADMIN_CHAT_ID', 'ALLOWED_ORIGINS', 'APP_URL', 'BOT_TOKEN', 'DOMAIN', 'MINI_APP_URL', 'WEBHOOK_SECRET']);
    const env = checkEnv({ file: '.env.prod', exists: true, mode: 0o600, values: parseEnvText(p.text!, '.env.prod'), example: parseEnvText(EXAMPLE, 'x'), exampleFile: '.env.prod.example' });
    expect(env.filter((r) => !r.ok)).toEqual([]);
  });

  it('a polling bot (BOT_SHAPE=polling in --settings or the file): no domain or e-mail asked, what follows DOMAIN left empty; preflight accepts it; a re-run changes nothing', () => {
    const input: OperatorInput = { botToken: TOKEN, adminChatId: '424242', settings: { BOT_SHAPE: 'polling' } };
    const p = plan(null, input);
    expect(p.ask).toEqual([]);
    const v = values(p.text!);
    expect(v).toMatchObject({ BOT_SHAPE: 'polling', BOT_TOKEN: TOKEN, DOMAIN: '', ACME_EMAIL: '', APP_URL: '', ALLOWED_ORIGINS: '', MINI_APP_URL: '' });
    expect(p.actions.find((a) => a.key === 'DOMAIN')).toMatchObject({ action: 'set', source: 'shape', value: '' });
    expect(describeAction(p.actions.find((a) => a.key === 'APP_URL')!)).toMatch(/not used by a polling bot/);
    const env = checkEnv({ file: '.env.prod', exists: true, mode: 0o600, values: parseEnvText(p.text!, '.env.prod'), example: parseEnvText(EXAMPLE, 'x'), exampleFile: '.env.prod.example' });
    expect(env.filter((r) => !r.ok)).toEqual([]);
    // the file now says polling: run again without --settings, nothing is asked or changed
    const again = plan(p.text!, {});
    expect(again.ask).toEqual([]);
    expect(again.text).toBeNull();
    // a webhook bot's setup still asks for them
    expect(plan(null, { botToken: TOKEN, adminChatId: '' }).ask).toEqual(['DOMAIN', 'ACME_EMAIL']);
  });

  it('run again with the same answers, or none: nothing changes', () => {
    const first = plan(null, ANSWERS).text!;
    for (const input of [ANSWERS, {}]) {
      const p = plan(first, input);
      expect(p.text).toBeNull();
      expect(p.ask).toEqual([]);
      expect(p.actions.filter((a) => a.action !== 'kept')).toEqual([]);
    }
  });

  it.each([
    ['nothing given, no file: asks all four', null, {}, ['DOMAIN', 'ACME_EMAIL', 'BOT_TOKEN', 'ADMIN_CHAT_ID']],
    ['the domain given: asks the rest', null, { domain: 'a.lazyflow.dev' }, ['ACME_EMAIL', 'BOT_TOKEN', 'ADMIN_CHAT_ID']],
    ['a copied example: asks what still reads CHANGE_ME, and the chat id', EXAMPLE, {}, ['DOMAIN', 'ACME_EMAIL', 'BOT_TOKEN']],
  ] as const)('%s', (_n, existing, input, asked) => {
    expect(plan(existing, input as OperatorInput).ask).toEqual(asked);
  });

  it('an empty ADMIN_CHAT_ID in an existing file is the operator\'s choice: not asked again', () => {
    const first = plan(null, { ...ANSWERS, adminChatId: '' }).text!;
    expect(values(first).ADMIN_CHAT_ID).toBe('');
    expect(plan(first, {}).ask).toEqual([]);
  });

  it.each([
    ['another domain', { domain: 'other.lazyflow.dev' }, 'DOMAIN', /DOMAIN is "bot\.lazyflow\.dev" in the env file, but you gave "other\.lazyflow\.dev": left as it is/],
    ['another token: shown as its length only', { botToken: '987654321:ZZbbccddeeffgghhiijjkkllmm' }, 'BOT_TOKEN', /^BOT_TOKEN is \(secret, 44 characters\) in the env file, but you gave \(secret, 36 characters\): left as it is$/],
    ['a settings line against the file', { settings: { STATE_DIR: '/data/lazyflow' } }, 'STATE_DIR', /--settings says "\/data\/lazyflow"/],
  ] as const)('a conflict is reported, never written: %s', (_n, input, key, says) => {
    const first = plan(null, ANSWERS).text!;
    const p = plan(first, input as OperatorInput);
    expect(p.text).toBeNull();
    const c = p.actions.find((a) => a.action === 'conflict')!;
    expect(c.key).toBe(key);
    expect(describeAction(c)).toMatch(says);
    expect(describeAction(c)).not.toContain(TOKEN);
  });

  it('a copied example is completed in place: the operator\'s own values stay, placeholders are filled', () => {
    const copied = EXAMPLE.replace('LOG_LEVEL=info', 'LOG_LEVEL=debug').replace('WEBHOOK_SECRET=CHANGE_ME', `WEBHOOK_SECRET=${'k'.repeat(20)}${'0123456789'.repeat(2)}`);
    const p = plan(copied, ANSWERS);
    const v = values(p.text!);
    expect(v.LOG_LEVEL).toBe('debug');
    expect(v.WEBHOOK_SECRET).toBe(`${'k'.repeat(20)}${'0123456789'.repeat(2)}`);
    expect(v.APP_URL).toBe('https://bot.lazyflow.dev');
  });

  it('a file with only the app\'s own lines (pasted before setup): completed from the example, the lines kept', () => {
    const p = plan('READY_PATH=/health\nFRONTEND_DIR=frontend\nMINI_APP_URL=https://bot.example.com\n', ANSWERS);
    const v = values(p.text!);
    expect(v).toMatchObject({ READY_PATH: '/health', FRONTEND_DIR: 'frontend', MINI_APP_URL: 'https://bot.lazyflow.dev', STATE_DIR: '/srv/lazyflow', DOMAIN: 'bot.lazyflow.dev', WEBHOOK_SECRET: gen() });
    expect(p.text!.startsWith('READY_PATH=/health\nFRONTEND_DIR=frontend\n')).toBe(true);
    expect(p.actions.find((a) => a.key === 'STATE_DIR')).toMatchObject({ action: 'set', source: 'example' });
    expect(plan(p.text!, {}).text).toBeNull(); // and then it is complete
  });

  it('settings: an app\'s own lines go in; a key only the operator can fill is named', () => {
    const p = plan(null, { ...ANSWERS, settings: { FRONTEND_DIR: 'frontend', FRONTEND_BUILD: 'bun run build:frontend', GOOGLE_CLIENT_ID: 'abc #1' } });
    expect(values(p.text!)).toMatchObject({ FRONTEND_DIR: 'frontend', FRONTEND_BUILD: 'bun run build:frontend', GOOGLE_CLIENT_ID: 'abc #1' });
    expect(parseEnvText(p.text!, 'x').GOOGLE_CLIENT_ID).toBe('abc #1');
    const withPlaceholder = plan(EXAMPLE.replace('LOG_LEVEL=info', 'LOG_LEVEL=info\nGOOGLE_SECRET=CHANGE_ME_TOO_x'), { ...ANSWERS });
    // a secret placeholder of the app's is generated only when the example itself has it: here the operator must fill it
    expect(withPlaceholder.actions.find((a) => a.key === 'GOOGLE_SECRET')).toMatchObject({ action: 'missing' });
  });

  it.each([
    ['DOMAIN', 'https://bot.lazyflow.dev', false], ['DOMAIN', 'CHANGE_ME.example.com', false], ['DOMAIN', 'bot.lazyflow.dev', true],
    ['ACME_EMAIL', 'ops', false], ['ACME_EMAIL', 'ops@lazyflow.dev', true],
    ['BOT_TOKEN', 'CHANGE_ME', false], ['BOT_TOKEN', TOKEN, true],
    ['ADMIN_CHAT_ID', '', true], ['ADMIN_CHAT_ID', '-1001234', true], ['ADMIN_CHAT_ID', '@me', false],
  ] as const)('answer %s=%j acceptable: %s', (key, value, okay) => {
    expect(invalidAnswer(key, value) === null).toBe(okay);
  });

  it.each([['BOT_TOKEN', true], ['WEBHOOK_SECRET', true], ['AWS_SECRET_ACCESS_KEY', true], ['OFFSITE_PASSWORD_FILE', false], ['ALERT_WEBHOOK_URL', true], ['FRONTEND_DIR', false], ['DOMAIN', false]] as const)('%s is a secret: %s', (k, s) => {
    expect(isSecretKey(k)).toBe(s);
  });

  it.each([['plain', 'plain'], ['bun run x', 'bun run x'], ['a #b', "'a #b'"], ["it's #1", '"it\'s #1"'], ['', '']])('formatValue(%j) = %s', (v, out) => {
    expect(formatValue(v)).toBe(out);
  });
});

const fresh: SetupObserved = {
  envFile: { text: 'X=1\n', actions: [{ key: 'DOMAIN', action: 'set', source: 'operator', value: 'bot.lazyflow.dev' }], ask: [] },
  envFilePath: '/srv/app/.env.prod',
  stateDirs: [
    { path: '/srv/lazyflow', appOwned: false, exists: false },
    { path: '/srv/lazyflow/data', appOwned: true, exists: false },
    { path: '/srv/lazyflow/uploads', appOwned: true, exists: false },
  ],
  appUid: 1000,
  live: null,
  headTag: 'abcdef123456',
  newestBackup: null,
  schedules: { write: 6, remove: 0, mode: 'systemd' },
};
const done: SetupObserved = {
  ...fresh,
  envFile: { text: null, actions: [{ key: 'DOMAIN', action: 'kept', value: 'bot.lazyflow.dev' }], ask: [] },
  envFileMode: 0o600,
  stateDirs: fresh.stateDirs.map((d) => ({ ...d, exists: true, uid: d.appOwned ? 1000 : 0, entries: 2 })),
  live: { tag: 'abcdef123456', status: 'running', health: 'healthy' },
  newestBackup: '20261207T180000Z',
  schedules: { write: 0, remove: 0, mode: 'systemd' },
};

describe('setup: the plan', () => {
  const summary = (o: SetupObserved) => planSetup(o).map((s) => `${s.step}:${s.problem ? `problem(${s.problem.exitCode})` : s.apply ? 'apply' : 'ok'}`).join(' ');
  it.each([
    ['a fresh machine: everything', fresh, 'env-file:apply state-dir:apply rollout:apply backup:apply schedules:apply smoke:ok'],
    ['all done: nothing', done, 'env-file:ok state-dir:ok rollout:ok backup:ok schedules:ok smoke:ok'],
    ['the env file readable by others: chmod', { ...done, envFileMode: 0o644 }, 'env-file:apply state-dir:ok rollout:ok backup:ok schedules:ok smoke:ok'],
    ['a conflict: stop, exit 2', { ...fresh, envFile: { text: null, ask: [], actions: [{ key: 'DOMAIN', action: 'conflict', value: 'a.lazyflow.dev', wanted: 'b.lazyflow.dev', source: 'operator' }] } }, 'env-file:problem(2) state-dir:apply rollout:apply backup:apply schedules:apply smoke:ok'],
    ['an app key nobody filled: stop, exit 2', { ...fresh, envFile: { text: 'x', ask: [], actions: [{ key: 'MINI_APP_URL', action: 'missing', value: 'CHANGE_ME' }] } }, 'env-file:problem(2) state-dir:apply rollout:apply backup:apply schedules:apply smoke:ok'],
    ['an empty data/ of root (mkdir by hand): handed over', { ...done, stateDirs: done.stateDirs.map((d) => (d.path.endsWith('data') ? { ...d, uid: 0, entries: 0 } : d)) }, 'env-file:ok state-dir:apply rollout:ok backup:ok schedules:ok smoke:ok'],
    ['a data/ of another uid with files: stop, exit 1', { ...done, stateDirs: done.stateDirs.map((d) => (d.path.endsWith('data') ? { ...d, uid: 0, entries: 3 } : d)) }, 'env-file:ok state-dir:problem(1) rollout:ok backup:ok schedules:ok smoke:ok'],
    ['the app runs an older commit: not setup\'s to deploy', { ...done, live: { tag: '000000aaaaaa', status: 'running', health: 'healthy' } }, 'env-file:ok state-dir:ok rollout:ok backup:ok schedules:ok smoke:ok'],
    ['the app container exited: recover first, exit 1', { ...done, live: { tag: 'abcdef123456', status: 'exited' } }, 'env-file:ok state-dir:ok rollout:problem(1) backup:ok schedules:ok smoke:ok'],
    ['deployed, but no backup and no schedules (setup killed after the rollout)', { ...done, newestBackup: null, schedules: { write: 6, remove: 0, mode: 'cron' } }, 'env-file:ok state-dir:ok rollout:ok backup:apply schedules:apply smoke:ok'],
  ] as const)('%s', (_n, o, expected) => {
    expect(summary(o as SetupObserved)).toBe(expected);
  });

  it('says why nothing needs doing, and that it is a no-op', () => {
    const steps = planSetup(done);
    expect(nothingToDo(steps)).toBe(true);
    expect(steps.find((s) => s.step === 'rollout')!.what).toBe('the app runs abcdef123456 (this checkout)');
    expect(nothingToDo(planSetup({ ...done, live: { tag: '000000aaaaaa', status: 'running', health: 'healthy' } }))).toBe(true);
    expect(planSetup({ ...done, live: { tag: '000000aaaaaa', status: 'running' } }).find((s) => s.step === 'rollout')!.what).toMatch(/this checkout is abcdef123456: deploy it with node scripts\/rollout\.mts/);
  });

  it('the state directories: data/ and uploads/ created for uid 1000', () => {
    expect(planSetup(fresh).find((s) => s.step === 'state-dir')!.dirs).toEqual([
      { path: '/srv/lazyflow', create: true, chown: false },
      { path: '/srv/lazyflow/data', create: true, chown: true },
      { path: '/srv/lazyflow/uploads', create: true, chown: true },
    ]);
  });
});
