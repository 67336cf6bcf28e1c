import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { scriptArgv } from '../../scripts/lib/cli/main.mts';
import { createLogger, renderTable } from '../../scripts/lib/cli/log.mts';

const lib = resolve(__dirname, '../../scripts/lib');
let dir: string;
let script: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lib-main-'));
  script = join(dir, 'demo.mts');
  writeFileSync(
    script,
    `import { runMain } from ${JSON.stringify(join(lib, 'cli', 'main.mts'))};
import { StepError, ConfigError } from ${JSON.stringify(join(lib, 'cli', 'errors.mts'))};
await runMain({
  name: 'demo.mts', summary: 'a demo command', usage: 'demo.mts [--fail step|config|bug]',
  options: [
    { name: 'fail', type: 'string', choices: ['step', 'config', 'bug'], describe: 'fail this way' },
    { name: 'quiet', type: 'boolean', describe: 'errors only' },
  ],
}, async (args, log) => {
  log.info('working');
  if (args.values.fail === 'step') throw new StepError('the thing broke', { step: 'copy', hint: 'run demo.mts again' });
  if (args.values.fail === 'config') throw new ConfigError('BOT_TOKEN is missing', { file: '/x/.env.prod', key: 'BOT_TOKEN', hint: 'add it' });
  if (args.values.fail === 'bug') throw new TypeError('undefined is not a function');
  log.ok('done');
  return 0;
});
`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('runMain', () => {
  it('--help prints usage, options and exit codes, exit 0', () => {
    const r = run('--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('demo.mts: a demo command');
    expect(r.out).toContain('--fail <value>');
    expect(r.out).toMatch(/2\s+usage or config error/);
  });
  it('success is exit 0', () => {
    const r = run();
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/info\s+working/);
    expect(r.out).toMatch(/ok\s+done/);
  });
  it('--quiet prints nothing on success', () => {
    const r = run('--quiet');
    expect(r.code).toBe(0);
    expect(r.out + r.err).toBe('');
  });
  it('an unknown flag is exit 2 with a hint, before the command runs', () => {
    const r = run('--nope');
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown option --nope');
    expect(r.err).toContain('--help');
    expect(r.out).not.toContain('working');
  });
  it('a failed step is exit 1 with the hint and no stack trace', () => {
    const r = run('--fail', 'step');
    expect(r.code).toBe(1);
    expect(r.err).toContain('copy: the thing broke');
    expect(r.err).toContain('next: run demo.mts again');
    expect(r.err).not.toMatch(/\n\s+at /);
  });
  it('a config error is exit 2 and names file and key', () => {
    const r = run('--fail', 'config', '--quiet');
    expect(r.code).toBe(2);
    expect(r.err).toContain('BOT_TOKEN is missing (/x/.env.prod)');
  });
  it('an unexpected error is exit 1 and keeps its stack', () => {
    const r = run('--fail', 'bug');
    expect(r.code).toBe(1);
    expect(r.err).toContain('unexpected error: undefined is not a function');
    expect(r.err).toMatch(/\n\s+at /);
  });
});

describe('scriptArgv', () => {
  it('works for node and for zx', () => {
    expect(scriptArgv(['/usr/bin/node', '/r/scripts/backup.mts', '--list'])).toEqual(['--list']);
    expect(scriptArgv(['/usr/bin/node', '/r/node_modules/zx/build/cli.js', 'scripts/backup.mts', '--list'])).toEqual(['--list']);
    expect(scriptArgv(['/usr/bin/node', '/r/node_modules/.bin/zx', '--quiet', 'scripts/backup.mts', '-h'])).toEqual(['-h']);
  });
});

describe('logger', () => {
  function sink() {
    const s = { text: '', write: (c: string) => ((s.text += c), true), isTTY: false };
    return s;
  }
  it('appends every line (even when quiet) to the ops log with timestamp, level and op', () => {
    const opsLog = join(dir, 'logs', 'ops.log');
    const out = sink();
    const err = sink();
    const log = createLogger({ opsLogPath: opsLog, quiet: true, op: 'backup', stdout: out as never, stderr: err as never });
    log.info('hello');
    log.warn('careful');
    log.error('broken');
    const st = log.step('copy');
    st.done('3 files');
    expect(out.text).toBe('');
    expect(err.text).toContain('broken');
    expect(err.text).not.toContain('careful');
    const lines = readFileSync(opsLog, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z INFO  \[backup \d+\] hello$/);
    expect(lines.some((l) => /WARN  \[backup \d+\] careful/.test(l))).toBe(true);
    expect(lines.some((l) => /OK    \[backup \d+\] copy \(\d+ ms\): 3 files/.test(l))).toBe(true);
  });
  it('json mode keeps stdout for data', () => {
    const out = sink();
    const err = sink();
    const log = createLogger({ json: true, stdout: out as never, stderr: err as never });
    log.info('human');
    log.out('{"a":1}');
    expect(out.text).toBe('{"a":1}\n');
    expect(err.text).toContain('human');
  });
  it('renders aligned tables', () => {
    expect(renderTable([{ id: 'a', size: 10 }, { id: 'bbb', size: 2000 }], ['id', { key: 'size', align: 'right' }])).toBe(
      'id   size\n---  ----\na      10\nbbb  2000\n',
    );
  });
});
