import { describe, it, expect } from 'vitest';
import {
  contractEnvHash, contractGateDecision, contractRefusal, imageContentHash, parseContractCache, recordContractPass, recordMissingKeys, stillMissingKeys, CONTRACT_CACHE_MAX,
  type CacheEntry, type ContractCache,
} from '../../scripts/lib/release/contract-gate.mts';
import { missingKeysInLog, type ItemResult } from '../../scripts/lib/contract/items.mts';

const entry = (imageId: string, envHash = 'e1', n = 0): CacheEntry => ({ imageId, envHash, image: `lazyflow-app:${imageId}`, checkedAt: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(), ms: 5000 });
const cache = (...entries: CacheEntry[]): ContractCache => ({ version: 1, entries });

describe('contract gate: run the check, or trust a cached pass', () => {
  it.each<[string, ContractCache, { imageId: string; envHash: string; skip?: boolean }, string]>([
    ['empty cache: check', cache(), { imageId: 'sha256:a', envHash: 'e1' }, 'not-cached'],
    ['this image passed with this env: cached', cache(entry('sha256:a')), { imageId: 'sha256:a', envHash: 'e1' }, 'cached'],
    ['another image passed: check', cache(entry('sha256:b')), { imageId: 'sha256:a', envHash: 'e1' }, 'not-cached'],
    ['this image passed with another env: check again', cache(entry('sha256:a', 'e0')), { imageId: 'sha256:a', envHash: 'e1' }, 'env-changed'],
    ['--skip-contract: nothing runs, even with no cache', cache(), { imageId: 'sha256:a', envHash: 'e1', skip: true }, 'skipped'],
  ])('%s', (_what, c, o, reason) => {
    const d = contractGateDecision(c, o);
    expect(d.reason).toBe(reason);
    expect(d.run).toBe(reason === 'not-cached' || reason === 'env-changed');
  });

  it.each<[string, ContractCache, { imageId: string; envHash: string; contentHash?: string | null }, string]>([
    ['another image with the same content passed with this env: cached', cache({ ...entry('sha256:b'), contentHash: 'c1' }), { imageId: 'sha256:a', envHash: 'e1', contentHash: 'c1' }, 'cached'],
    ['the same content passed with another env: check again', cache({ ...entry('sha256:b', 'e0'), contentHash: 'c1' }), { imageId: 'sha256:a', envHash: 'e1', contentHash: 'c1' }, 'env-changed'],
    ['other content: check', cache({ ...entry('sha256:b'), contentHash: 'c0' }), { imageId: 'sha256:a', envHash: 'e1', contentHash: 'c1' }, 'not-cached'],
    ['no content hash known (unreadable layers): only the image id counts', cache({ ...entry('sha256:b'), contentHash: 'c1' }), { imageId: 'sha256:a', envHash: 'e1', contentHash: null }, 'not-cached'],
    ['an entry of an older toolkit (no content hash) never matches by content', cache(entry('sha256:b')), { imageId: 'sha256:a', envHash: 'e1', contentHash: 'c1' }, 'not-cached'],
  ])('%s', (_what, c, o, reason) => {
    expect(contractGateDecision(c, o).reason).toBe(reason);
  });

  it("an image's content: its layers and run configuration, not its tag's APP_VERSION, labels or build history", () => {
    const img = (o: { layers?: unknown; env?: string[]; labels?: Record<string, string>; cmd?: string[]; user?: string; image?: string }) => ({
      Layers: o.layers ?? ['sha256:l1', 'sha256:l2'],
      Config: { User: o.user ?? 'bun', Env: o.env ?? ['PATH=/usr/bin', 'APP_VERSION=aaa'], Cmd: o.cmd ?? ['bun', 'src/server.ts'], WorkingDir: '/app', Labels: o.labels ?? { 'org.lazyflow.git-sha': 'aaa' }, Image: o.image ?? 'sha256:parent1', Hostname: 'x' },
    });
    const base = imageContentHash(img({}));
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    // another commit that changed nothing the image holds: same content
    expect(imageContentHash(img({ env: ['PATH=/usr/bin', 'APP_VERSION=bbb'], labels: { 'org.lazyflow.git-sha': 'bbb' }, image: 'sha256:parent2' }))).toBe(base);
    // anything the app runs with: other content
    expect(imageContentHash(img({ layers: ['sha256:l1', 'sha256:l3'] }))).not.toBe(base);
    expect(imageContentHash(img({ env: ['PATH=/usr/bin', 'APP_VERSION=aaa', 'FEATURE=on'] }))).not.toBe(base);
    expect(imageContentHash(img({ cmd: ['bun', 'src/other.ts'] }))).not.toBe(base);
    expect(imageContentHash(img({ user: 'root' }))).not.toBe(base);
    // nothing to hash: no match by content
    expect(imageContentHash(img({ layers: [] }))).toBeNull();
    expect(imageContentHash({ Config: {} })).toBeNull();
  });

  it('a pass is recorded newest last, once per image and env, bounded to the newest entries', () => {
    let c = cache();
    for (let i = 0; i < CONTRACT_CACHE_MAX + 5; i++) c = recordContractPass(c, entry(`sha256:${i}`, 'e1', i));
    expect(c.entries).toHaveLength(CONTRACT_CACHE_MAX);
    expect(c.entries[0].imageId).toBe('sha256:5');
    expect(c.entries.at(-1)!.imageId).toBe(`sha256:${CONTRACT_CACHE_MAX + 4}`);
    // re-recording an old one moves it to the end instead of duplicating it
    c = recordContractPass(c, entry('sha256:7', 'e1', 99));
    expect(c.entries.filter((e) => e.imageId === 'sha256:7')).toHaveLength(1);
    expect(c.entries.at(-1)!.imageId).toBe('sha256:7');
    expect(c.entries).toHaveLength(CONTRACT_CACHE_MAX);
    // the same image with another env is another entry
    c = recordContractPass(c, entry('sha256:7', 'e2', 100));
    expect(c.entries.filter((e) => e.imageId === 'sha256:7').map((e) => e.envHash)).toEqual(['e1', 'e2']);
    expect(recordContractPass(cache(entry('a'), entry('b')), entry('c'), 2).entries.map((e) => e.imageId)).toEqual(['b', 'c']);
  });

  it.each([
    ['missing file', null],
    ['not JSON', '{"entries": ['],
    ['wrong shape', '{"entries": "x"}'],
  ])('an unreadable cache (%s) is empty: the gate checks again', (_what, text) => {
    expect(parseContractCache(text)).toEqual({ version: 1, entries: [] });
  });

  it('the env hash changes with an app key or the probe image, not with toolkit or backup keys; values never appear in it', () => {
    const base = { MINI_APP_URL: 'https://a.example', STATE_DIR: '/srv' };
    const h = contractEnvHash(base, 'oven/bun:1');
    expect(h).toMatch(/^[0-9a-f]{32}$/);
    expect(contractEnvHash({ ...base }, 'oven/bun:1')).toBe(h);
    expect(contractEnvHash({ ...base, MINI_APP_URL: 'https://b.example' }, 'oven/bun:1')).not.toBe(h);
    expect(contractEnvHash({ ...base, EXTRA_APP_SETTING: '1' }, 'oven/bun:1')).not.toBe(h);
    expect(contractEnvHash(base, 'oven/bun:2')).not.toBe(h);
    expect(contractEnvHash({ ...base, STATE_DIR: '/other', AWS_SECRET_ACCESS_KEY: 'k', OFFSITE_TIMEOUT: '60' }, 'oven/bun:1')).toBe(h);
    expect(h).not.toContain('a.example');
    // what the stack probes is part of the check: another readiness or healthcheck path checks again
    expect(contractEnvHash({ ...base, READY_PATH: '/health' }, 'oven/bun:1')).not.toBe(h);
    expect(contractEnvHash({ ...base, HEALTHCHECK_PATH: '/health' }, 'oven/bun:1')).not.toBe(h);
    expect(contractEnvHash({ ...base, COMPOSE_FILE: 'docker-compose.yml:docker/compose.bun-healthcheck.yml' }, 'oven/bun:1')).not.toBe(h);
    expect(contractEnvHash({ ...base, READY_PATH: '/ready', HEALTHCHECK_PATH: '/health/write', COMPOSE_FILE: 'docker-compose.yml' }, 'oven/bun:1')).toBe(h);
  });

  it('the keys an app named when it exited at start-up: recorded on a refusal, named while the env file lacks them, cleared by a pass', () => {
    const at = new Date(Date.UTC(2026, 2, 1));
    const refused = recordMissingKeys(cache(entry('sha256:a')), 'app:1', ['MINI_APP_URL', 'GOOGLE_OAUTH_STATE_SECRET'], at);
    expect(parseContractCache(JSON.stringify(refused))).toEqual(refused);
    expect(stillMissingKeys(refused, {})).toEqual({ image: 'app:1', at: at.toISOString(), keys: ['MINI_APP_URL', 'GOOGLE_OAUTH_STATE_SECRET'] });
    expect(stillMissingKeys(refused, { MINI_APP_URL: 'https://m.example' })?.keys).toEqual(['GOOGLE_OAUTH_STATE_SECRET']);
    expect(stillMissingKeys(refused, { MINI_APP_URL: 'x', GOOGLE_OAUTH_STATE_SECRET: ' ' })?.keys).toEqual(['GOOGLE_OAUTH_STATE_SECRET']);
    expect(stillMissingKeys(refused, { MINI_APP_URL: 'x', GOOGLE_OAUTH_STATE_SECRET: 'y' })).toBeNull();
    expect(recordMissingKeys(refused, 'app:2', [], at).missingKeys).toBeUndefined();
    expect(recordMissingKeys(refused, 'app:2', [], at).entries).toEqual(refused.entries);
  });

  it.each([
    ['lazyflow-app: MINI_APP_URL is required (the https URL of the Mini App)', ['MINI_APP_URL']],
    ['{"level":"fatal","msg":"config","errors":["GOOGLE_OAUTH_STATE_SECRET is missing","DB_PATH is not set"]}', ['GOOGLE_OAUTH_STATE_SECRET']],
    ['error: SQLITE_CANTOPEN: unable to open database file (required)', []],
    ['ERR_MODULE_NOT_FOUND: Cannot find package hono', []],
    ['FEATURE_FLAGS parsed; listening', []],
  ])('keys an app names as missing in its last log lines: %s', (log, keys) => {
    expect(missingKeysInLog(log, ['DB_PATH', 'PORT'])).toEqual(keys);
  });

  it('the refusal names each failed required item with what was seen and its fix', () => {
    const results = [
      { id: 'health', tier: 'required', status: 'missing', title: 'GET /health', detail: 'GET /health -> 404', fix: 'app.get("/health", ...)', runbook: 'RUNBOOK.md, The app contract' },
      { id: 'non-root', tier: 'required', status: 'wrong', title: 'non-root', detail: 'the image runs as root', fix: 'USER bun', runbook: 'RUNBOOK.md, The app contract' },
      { id: 'port', tier: 'required', status: 'pass', title: 'PORT', detail: 'answers on PORT' },
      { id: 'readiness', tier: 'recommended', status: 'missing', title: 'readiness', detail: 'no /ready', fix: 'add /ready' },
    ] as unknown as ItemResult[];
    const text = contractRefusal('lazyflow-app:abc', results);
    expect(text.split('\n')[0]).toBe('lazyflow-app:abc does not meet the required app contract (health, non-root); nothing live changed');
    expect(text).toContain('health missing: GET /health -> 404');
    expect(text).toContain('fix: app.get("/health", ...)');
    expect(text).toContain('non-root wrong: the image runs as root');
    expect(text).toContain('fix: USER bun');
    expect(text).not.toContain('readiness');
    expect(text).not.toMatch(/\bport\b/);
  });
});
