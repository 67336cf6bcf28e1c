import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { scriptArgv } from '../../scripts/lib/cli/main.mts';
import { OUTPUT_LOG_ROTATION, createLogger, renderTable, rotateOutputLog } from '../../scripts/lib/cli/log.mts';

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

describe('the env option is --config: neither Node nor zx takes it, so a missing file keeps exit 2 and the hint', () => {
  const repo = resolve(__dirname, '../..');
  it.each([
    { how: 'node scripts/smoke.mts', cmd: process.execPath, argv: ['scripts/smoke.mts'] },
    { how: 'npx zx scripts/smoke.mts', cmd: 'npx', argv: ['--no-install', 'zx', 'scripts/smoke.mts'] },
  ])('$how --config /nonexistent.env', ({ cmd, argv }) => {
    const r = spawnSync(cmd, [...argv, '--config', '/nonexistent.env'], { cwd: repo, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/error env file \/nonexistent\.env does not exist/);
    expect(r.stderr).toContain(`next: create it: cp ${join(repo, '.env.prod.example')} /nonexistent.env && chmod 600 /nonexistent.env`);
  }, 60_000);
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
  it('aligns coloured cells by what a terminal shows: colour codes take no column', () => {
    const red = (t: string) => `\u001b[31m${t}\u001b[39m`;
    const plain = renderTable([{ unit: 'backup', result: 'ok' }, { unit: 'x', result: 'FAILED' }], ['unit', 'result']);
    const coloured = renderTable([{ unit: 'backup', result: 'ok' }, { unit: red('x'), result: red('FAILED') }], ['unit', 'result']);
    expect(coloured.replace(/\u001b\[\d+m/g, '')).toBe(plain);
    expect(renderTable([{ n: red('7') }, { n: '1000' }], [{ key: 'n', align: 'right' }])).toBe(`   n\n----\n   ${red('7')}\n1000\n`);
  });

  it('rotates the ops log by size and keeps a bounded number of old files, the newest lines last', () => {
    const opsLog = join(dir, 'rot', 'ops.log');
    const log = createLogger({ opsLogPath: opsLog, quiet: true, op: 'cron', stdout: sink() as never, stderr: sink() as never, opsLogRotation: { maxBytes: 2000, keep: 3 } });
    for (let i = 0; i < 200; i++) log.info(`line ${String(i).padStart(3, '0')} ${'x'.repeat(40)}`);
    const files = readdirSync(join(dir, 'rot')).sort();
    expect(files).toEqual(['ops.log', 'ops.log.1', 'ops.log.2', 'ops.log.3']);
    for (const f of files) expect(statSync(join(dir, 'rot', f)).size).toBeLessThanOrEqual(2000);
    // oldest to newest, the kept lines are one unbroken run ending with the last line written
    const kept = ['ops.log.3', 'ops.log.2', 'ops.log.1', 'ops.log'].flatMap((f) => readFileSync(join(dir, 'rot', f), 'utf8').trimEnd().split('\n'));
    const nums = kept.map((l) => Number(/ line (\d{3}) x+$/.exec(l)![1]));
    expect(nums.at(-1)).toBe(199);
    expect(nums).toEqual(nums.map((_, i) => nums[0] + i));
    expect(nums.length).toBeGreaterThan(60); // about 18 lines of ~108 bytes per 2000-byte file
  });

  it('two or more operations writing at once lose no line and rotate cleanly', async () => {
    const { spawn } = await import('node:child_process');
    const rotDir = join(dir, 'concurrent');
    const opsLog = join(rotDir, 'ops.log');
    const go = join(dir, 'go-log');
    const script = join(dir, 'log-writer.mts');
    const writers = 4;
    const perWriter = 300;
    const maxBytes = 2048; // small: many rotations, so that racing ones would show
    writeFileSync(
      script,
      `import fs from 'node:fs';
import { createLogger } from ${JSON.stringify(join(lib, 'cli', 'log.mts'))};
const [path, go, w, n] = process.argv.slice(2);
const quiet = { write: () => true, isTTY: false };
const log = createLogger({ opsLogPath: path, quiet: true, op: 'w' + w, stdout: quiet, stderr: quiet, opsLogRotation: { maxBytes: ${maxBytes}, keep: 1000 } });
while (!fs.existsSync(go)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
for (let i = 0; i < Number(n); i++) log.info('writer ' + w + ' seq ' + i + ' ' + 'y'.repeat(60));
`,
    );
    const exits = Array.from({ length: writers }, (_, w) => {
      const child = spawn(process.execPath, [script, opsLog, go, String(w), String(perWriter)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      return new Promise<{ code: number | null; stderr: string }>((res) => child.on('exit', (code) => res({ code, stderr })));
    });
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(go, '');
    for (const e of await Promise.all(exits)) expect(e).toEqual({ code: 0, stderr: '' });

    const files = readdirSync(rotDir);
    expect(files.filter((f) => !/^ops\.log(\.\d+)?$/.test(f))).toEqual([]); // no rotation lock left behind
    expect(files.length).toBeGreaterThan(40); // it did rotate, many times
    const lineLen = 200;
    const seen = new Map<string, number[]>();
    for (const f of files) {
      const text = readFileSync(join(rotDir, f), 'utf8');
      expect(text.length).toBeLessThanOrEqual(maxBytes + writers * lineLen); // at most the lines in flight past the bound
      expect(text.endsWith('\n')).toBe(true);
      for (const l of text.trimEnd().split('\n')) {
        const m = /^\S+Z INFO  \[w(\d) \d+\] writer (\d) seq (\d+) y{60}$/.exec(l);
        expect(m, l).not.toBeNull();
        seen.set(m![2], [...(seen.get(m![2]) ?? []), Number(m![3])]);
      }
    }
    expect([...seen.keys()].sort()).toEqual(Array.from({ length: writers }, (_, w) => String(w)));
    for (const seqs of seen.values()) expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: perWriter }, (_, i) => i));
  }, 30_000);
});

describe('a scheduled job\'s own log (cron: >>STATE_DIR/logs/<job>.log 2>&1) is bounded like ops.log', () => {
  const rotation = { maxBytes: 1000, keep: 3 };

  it('a simulated year of daily runs keeps at most keep + 1 files of at most maxBytes plus two runs, the newest run last', () => {
    const logs = join(dir, 'cron-year', 'logs');
    mkdirSync(logs, { recursive: true });
    const ops = join(logs, 'ops.log');
    const job = join(logs, 'backup.log');
    for (let day = 0; day < 365; day++) {
      // what cron does: open the job's log for appending, then the job starts, rotates, and writes to that same descriptor
      const fd = openSync(job, 'a');
      try {
        rotateOutputLog(ops, rotation, fd);
        writeSync(fd, `day ${String(day).padStart(3, '0')} ${'e'.repeat(130)}\n`);
      } finally {
        closeSync(fd);
      }
    }
    const files = readdirSync(logs).sort();
    expect(files).toEqual(['backup.log', 'backup.log.1', 'backup.log.2', 'backup.log.3']);
    // the run that took it past maxBytes, and the one that rotated it (that run's output goes on in .1)
    const run = 139;
    for (const f of files) expect(statSync(join(logs, f)).size).toBeLessThanOrEqual(rotation.maxBytes + 2 * run);
    const days = ['backup.log.3', 'backup.log.2', 'backup.log.1', 'backup.log']
      .flatMap((f) => readFileSync(join(logs, f), 'utf8').trimEnd().split('\n'))
      .map((l) => Number(/^day (\d{3}) e+$/.exec(l)![1]));
    expect(days.at(-1)).toBe(364);
    expect(days).toEqual(days.map((_, i) => days[0] + i)); // unbroken, in order
  });

  it.each([
    { name: 'the ops log itself (rotated by the logger per line)', file: 'logs/ops.log' },
    { name: 'a file outside the ops log\'s directory (an operator\'s own redirect)', file: 'elsewhere/mine.log' },
    { name: 'a file in that directory not named *.log', file: 'logs/notes.txt' },
  ])('leaves alone: $name', ({ file }) => {
    const base = mkdtempSync(join(dir, 'cron-not-'));
    const p = join(base, file);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, 'x'.repeat(5000));
    const fd = openSync(p, 'a');
    try {
      expect(rotateOutputLog(join(base, 'logs', 'ops.log'), rotation, fd)).toBe(false);
    } finally {
      closeSync(fd);
    }
    expect(statSync(p).size).toBe(5000);
  });

  it('a script run as cron runs it rotates its full log when it sets the ops log, and this run goes on in <job>.log.1', () => {
    const logs = join(dir, 'cron-real', 'logs');
    mkdirSync(logs, { recursive: true });
    const job = join(logs, 'watch.log');
    const old = 'old run\n'.repeat(Math.ceil((OUTPUT_LOG_ROTATION.maxBytes + 1) / 8));
    writeFileSync(job, old);
    const jobScript = join(dir, 'cron-job.mts');
    writeFileSync(jobScript, `import { createLogger } from ${JSON.stringify(join(lib, 'cli', 'log.mts'))};
const log = createLogger({ quiet: true, op: 'watch' });
log.setOpsLog(${JSON.stringify(join(logs, 'ops.log'))});
log.error('this run failed');
`);
    const r = spawnSync('/bin/sh', ['-c', `"${process.execPath}" "${jobScript}" >>"${job}" 2>&1`], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(logs).sort()).toEqual(['ops.log', 'watch.log.1']);
    const rotated = readFileSync(join(logs, 'watch.log.1'), 'utf8');
    expect(rotated.startsWith(old)).toBe(true);
    expect(rotated.slice(old.length)).toMatch(/this run failed/);
  });
});
