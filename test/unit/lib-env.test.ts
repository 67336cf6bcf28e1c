import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOpsEnv } from '../../scripts/lib/config/env.mts';
import { ConfigError } from '../../scripts/lib/cli/errors.mts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lib-env-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadOpsEnv', () => {
  it('reads values, defaults and resolves STATE_DIR against the project directory', () => {
    const file = write('.env.prod', '# comment\nCOMPOSE_PROJECT_NAME=lf-test\nSTATE_DIR=./state\nDOMAIN=example.org\nBOT_TOKEN="123:abc"\nexport LOG_LEVEL=info\n');
    const env = loadOpsEnv(file, { projectDir: '/srv/app' });
    expect(env.file).toBe(file);
    expect(env.envFile).toBe(file);
    expect(env.mode).toBe(0o600);
    expect(env.project).toBe('lf-test');
    expect(env.stateDir).toBe('/srv/app/state');
    expect(env.layout.db).toBe('/srv/app/state/data/lazyflow.db');
    expect(env.layout.lockFile).toBe('/srv/app/state/ops.lock');
    expect(env.domain).toBe('example.org');
    expect(env.appUrl).toBe('https://example.org');
    expect(env.values.BOT_TOKEN).toBe('123:abc');
    expect(env.values.LOG_LEVEL).toBe('info');
    expect(env.appImage).toBe('lazyflow-app');
    expect(env.appTag).toBe('local');
    expect(env.composeFiles).toEqual([]);
  });

  it('uses the compose defaults for an empty file and splits COMPOSE_FILE on ":"', () => {
    const env = loadOpsEnv(write('e', 'COMPOSE_FILE=docker-compose.yml:/etc/override.yml\n'), { projectDir: '/p' });
    expect(env.project).toBe('lazyflow');
    expect(env.stateDir).toBe('/p/.state');
    expect(env.composeFiles).toEqual(['/p/docker-compose.yml', '/etc/override.yml']);
  });

  it('a missing file is a config error naming the file and how to create it', () => {
    const err = configError(() => loadOpsEnv(join(dir, 'nope.env')));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(join(dir, 'nope.env'));
    expect(err.message).toContain('does not exist');
    // both paths absolute: right from any directory, not only the checkout
    expect(err.hint).toContain(`cp ${join(import.meta.dirname, '..', '..', '.env.prod.example')} ${join(dir, 'nope.env')} && chmod 600 ${join(dir, 'nope.env')}`);
  });

  it('a required key that is missing or empty is named, with the file', () => {
    const file = write('e', 'BOT_TOKEN=\nDOMAIN=x\n');
    const err = configError(() => loadOpsEnv(file, { require: ['DOMAIN', 'BOT_TOKEN'] }));
    expect(err.key).toBe('BOT_TOKEN');
    expect(err.file).toBe(file);
    expect(err.message).toContain('BOT_TOKEN');
    expect(err.message).toContain(file);
  });

  it('a malformed line is named with file and line number', () => {
    const file = write('e', 'DOMAIN=x\nthis is not a line\n');
    const err = configError(() => loadOpsEnv(file));
    expect(err.message).toContain(`${file}:2`);
  });

  it('a bad key name is named', () => {
    const file = write('e', 'DOMAIN=x\nAPP-URL=https://x\n');
    const err = configError(() => loadOpsEnv(file));
    expect(err.key).toBe('APP-URL');
    expect(err.message).toContain('APP-URL');
    expect(err.message).toContain(file);
  });

  it('accepts a quoted multi-line value', () => {
    const env = loadOpsEnv(write('e', 'A="line1\nline2"\nB=2\n'));
    expect(env.values.A).toBe('line1\nline2');
    expect(env.values.B).toBe('2');
  });

  it('an invalid project name is a config error for COMPOSE_PROJECT_NAME', () => {
    const err = configError(() => loadOpsEnv(write('e', 'COMPOSE_PROJECT_NAME=Bad Name\n')));
    expect(err.key).toBe('COMPOSE_PROJECT_NAME');
  });
});
