import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import { DEFAULT_API_PATHS, parseApiPaths, probePathFor } from '../../scripts/lib/config/api-paths.mts';
import { evalRoutes, type HttpObs } from '../../scripts/lib/checks/evaluate.mts';

const root = join(import.meta.dirname, '..', '..');
const INDEX = '<!doctype html><html><body>Mini App</body></html>';
const html = (body = INDEX): HttpObs => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body });
const json = (status: number, body = '{"error":"not_found"}'): HttpObs => ({ status, headers: { 'content-type': 'application/json' }, body });

describe('API_PATHS', () => {
  it('the default is the lazyflow plans\' list, the same in the Caddyfile and in compose', () => {
    for (const p of ['/health', '/me', '/tasks', '/folders', '/files', '/media', '/google', '/google/*', '/webhook/*']) expect(parseApiPaths(undefined)).toContain(p);
    expect(readFileSync(join(root, 'docker/caddy/Caddyfile'), 'utf8')).toContain(`@api path {$API_PATHS:${DEFAULT_API_PATHS}}`);
    expect(readFileSync(join(root, 'docker-compose.yml'), 'utf8')).toContain(`API_PATHS: \${API_PATHS:-${DEFAULT_API_PATHS}}`);
  });
  it('parses whitespace-separated patterns; empty means the default', () => {
    expect(parseApiPaths(' /a  /b/*\n')).toEqual(['/a', '/b/*']);
    expect(parseApiPaths('')).toEqual(DEFAULT_API_PATHS.split(' '));
    expect(probePathFor('/folders')).toBe('/folders');
    expect(probePathFor('/google/*')).toBe('/google/smoke-route-probe');
  });
  it('/config.js sets window.LAZYFLOW_API_BASE_URL', () => {
    expect(readFileSync(join(root, 'docker/caddy/Caddyfile'), 'utf8')).toMatch(/window\.LAZYFLOW_API_BASE_URL = "\{\$API_BASE:\}"/);
  });
});

type Row = [name: string, probes: { pattern: string; r: HttpObs }[], status: 'pass' | 'fail', detail: RegExp];
const rows: Row[] = [
  ['app answers JSON (even 404) on every path', [{ pattern: '/folders', r: json(404) }, { pattern: '/google/*', r: json(200, '{}') }], 'pass', /2 API paths reach the app/],
  ['a path answered with the index page', [{ pattern: '/folders', r: html() }, { pattern: '/me', r: json(401) }], 'fail', /GET \/folders \(\/folders\) answered with the Mini App's index page/],
  ['caddy could not reach the app', [{ pattern: '/health', r: { status: 502, headers: {}, body: '' } }], 'fail', /502: Caddy did not reach the app/],
  ['caddy had no healthy upstream (503, no body)', [{ pattern: '/folders', r: { status: 503, headers: {}, body: '' } }], 'fail', /503: Caddy did not reach the app/],
  ['the app itself answers 503', [{ pattern: '/health', r: json(503, '{"status":"error"}') }], 'pass', /reach the app/],
  ['no answer', [{ pattern: '/me', r: { status: 0, headers: {}, body: '', error: 'ECONNREFUSED' } }], 'fail', /ECONNREFUSED/],
  ['a pattern that is not a path', [{ pattern: 'folders', r: json(404) }], 'fail', /not a path/],
  ['an app HTML page that is not the index', [{ pattern: '/google/*', r: html('<html><body>signed in</body></html>') }], 'pass', /reach the app/],
];

describe('routes verdict', () => {
  it.each(rows)('%s', (_n, probes, status, detail) => {
    const v = evalRoutes({ index: html(), probes: probes.map((p) => ({ ...p, path: probePathFor(p.pattern) })) });
    expect(v.status).toBe(status);
    expect(v.detail).toMatch(detail);
  });
});
