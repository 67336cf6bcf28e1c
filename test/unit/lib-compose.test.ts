import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { docker } from '../../scripts/lib/docker/run.mts';
import {
  composeArgs,
  composeEnv,
  imagesArgs,
  logsArgs,
  parseComposePs,
  psArgs,
  psQuietArgs,
} from '../../scripts/lib/commands/compose.mts';

const ctx = { projectDir: '/srv/lazyflow', envFile: '/srv/lazyflow/.env.prod', project: 'lazyflow' };
const base = ['compose', '--project-directory', '/srv/lazyflow', '--env-file', '/srv/lazyflow/.env.prod', '-p', 'lazyflow'];

describe('compose commands are data', () => {
  it('composeArgs puts the global flags first, then the subcommand', () => {
    expect(composeArgs(ctx, 'ps', '--format', 'json')).toEqual([...base, 'ps', '--format', 'json']);
  });

  it('adds -f for every compose file, in order', () => {
    expect(composeArgs({ ...ctx, composeFiles: ['/a/docker-compose.yml', '/a/override.yml'] }, 'config')).toEqual([
      ...base,
      '-f',
      '/a/docker-compose.yml',
      '-f',
      '/a/override.yml',
      'config',
    ]);
  });

  it('keeps arguments with spaces and shell characters as single elements, through zx into a real process', async () => {
    // The argv goes through docker/run.mts's own `docker()` (zx `$`, a real shell) into a stand-in
    // `docker` on PATH that prints the argv it received: only zx's quoting keeps each element whole.
    const dir = mkdtempSync(join(tmpdir(), 'lzf-argv-'));
    const marker = join(dir, 'pwned');
    try {
      // NUL-terminated, so that newlines and empty elements come back exactly (not node: it would
      // take --env-file for its own option)
      writeFileSync(join(dir, 'docker'), `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done\n`, { mode: 0o755 });
      const nasty = [
        `/srv/my app; touch ${marker}`,
        `$(touch ${marker})`,
        '`touch ' + marker + '`',
        "it's \"quoted\"",
        'line one\nline two',
        '  leading and trailing  ',
        '',
        '* ? [a] ~ & | > < # !',
        '$HOME ${PATH} \\ \\n',
      ];
      const args = composeArgs({ ...ctx, projectDir: nasty[0], envFile: nasty[1] }, 'logs', ...nasty.slice(2));
      const out = await docker(args, { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
      expect(out.stdout.split('\0').slice(0, -1)).toEqual(args);
      expect(args).toHaveLength(base.length + 1 + nasty.length - 2);
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('converts numbers to strings', () => {
    expect(composeArgs(ctx, 'stop', '-t', 30, 'app')).toEqual([...base, 'stop', '-t', '30', 'app']);
  });

  it('builds the common commands', () => {
    expect(psArgs(ctx)).toEqual([...base, 'ps', '--format', 'json']);
    expect(psArgs(ctx, { all: true, service: 'app' })).toEqual([...base, 'ps', '--all', '--format', 'json', 'app']);
    expect(psQuietArgs(ctx)).toEqual([...base, 'ps', '-q', 'app']);
    // the app's one stop and one start: test/unit/docker-commands.test.ts
    expect(logsArgs(ctx, { service: 'app', tail: 100, since: '10m' })).toEqual([...base, 'logs', '--no-color', '--tail', '100', '--since', '10m', 'app']);
    expect(imagesArgs(ctx, { service: 'app' })).toEqual([...base, 'images', '--format', 'json', 'app']);
  });
});

describe('parseComposePs', () => {
  it('reads JSON lines (compose >= 2.21)', () => {
    const text = '{"ID":"a","Service":"app","State":"running","Health":"healthy"}\n{"ID":"b","Service":"caddy","State":"running","Health":""}\n';
    expect(parseComposePs(text).map((e) => e.Service)).toEqual(['app', 'caddy']);
  });
  it('reads a JSON array (older v2)', () => {
    expect(parseComposePs('[{"ID":"a","Service":"app"}]')[0].ID).toBe('a');
  });
  it('reads empty output as no containers', () => {
    expect(parseComposePs('\n')).toEqual([]);
  });
});

describe('composeEnv', () => {
  it('drops shell variables that the env file defines, so the file wins', () => {
    const env = composeEnv({ STATE_DIR: '/srv/state', APP_TAG: 'v2' }, { STATE_DIR: '/tmp/oops', PATH: '/bin', HOME: '/root' });
    expect(env).toEqual({ PATH: '/bin', HOME: '/root' });
  });
});
