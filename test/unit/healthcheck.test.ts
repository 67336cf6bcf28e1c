import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import { BUN_HEALTHCHECK_FILE, DEFAULT_HEALTHCHECK_PATH, healthcheckArgv, healthcheckExecArgs, healthcheckKind, healthcheckPath } from '../../scripts/lib/commands/healthcheck.mts';

const root = join(import.meta.dirname, '..', '..');

/** compose's interpolation of the few forms the files use: $$ -> $, ${VAR:-default} */
function interpolate(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\$|\$\{(\w+):-([^}]*)\}/g, (m, name: string | undefined, def: string | undefined) => (m === '$$' ? '$' : vars[name!] || def!));
}

/** the app service's healthcheck test array of a compose file (a YAML flow sequence of JSON strings) */
function composeTest(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const app = text.slice(text.indexOf('\n  app:'));
  const line = /\n\s+test: (\[.*\])\n/.exec(app.slice(app.indexOf('healthcheck:')))![1];
  return JSON.parse(line) as string[];
}

describe('the app healthcheck probe', () => {
  it.each([
    ['docker-compose.yml', 'bash'],
    [BUN_HEALTHCHECK_FILE, 'bun'],
  ] as const)('%s runs exactly healthcheckArgv(%s, HEALTHCHECK_PATH)', (file, kind) => {
    const test = composeTest(file);
    expect(test[0]).toBe('CMD');
    for (const path of ['', '/health', '/status/live']) {
      expect(test.slice(1).map((a) => interpolate(a, { HEALTHCHECK_PATH: path }))).toEqual(healthcheckArgv(kind, path || DEFAULT_HEALTHCHECK_PATH));
    }
  });
  it('the kind follows COMPOSE_FILE; the path follows HEALTHCHECK_PATH (default the reference app\'s write probe)', () => {
    expect(healthcheckKind([])).toBe('bash');
    expect(healthcheckKind(['/srv/x/docker-compose.yml'])).toBe('bash');
    expect(healthcheckKind(['/srv/x/docker-compose.yml', `/srv/x/${BUN_HEALTHCHECK_FILE}`])).toBe('bun');
    expect(healthcheckPath({})).toBe('/health/write');
    expect(healthcheckPath({ HEALTHCHECK_PATH: ' /health ' })).toBe('/health');
    expect(healthcheckExecArgs('c1', 'bash', '/health').slice(0, 4)).toEqual(['exec', 'c1', 'bash', '-c']);
    expect(healthcheckArgv('bash', '/health')[2]).toContain("printf 'GET /health HTTP/1.1\\r\\n");
  });
});
