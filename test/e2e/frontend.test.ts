// The Mini App and the Caddyfile are part of every release: a rollout whose only change is in the
// front end (app/web) and in docker/caddy/Caddyfile serves both under load with zero failed requests,
// without replacing the Caddy container; smoke checks that the served front end is the release's; a
// rollback serves the old one again.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeDocker } from '../support/docker.ts';
import { startStack, e2eImages, type Stack } from '../support/stack.ts';
import { signInitData } from '../support/telegram.ts';
import { repoRoot, runScript, type RunResult } from '../support/run.ts';
import { ReleaseSource, removeImages } from '../support/release-source.mts';
import { appOps, startLoad, stats } from '../support/load.mts';
import { readJournal } from '../../scripts/lib/release/journal.mts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const MARK = 'lazyflow-e2e-frontend-v2';

describeDocker('front end per release: the Mini App and the Caddyfile ship with every rollout', () => {
  let stack: Stack;
  let src: ReleaseSource;
  const args = (...extra: string[]) => ['--config', stack.envFile, '--ca', stack.caPem, '--no-notify', ...extra];
  const journal = () => readJournal(join(stack.stateDir, 'releases.jsonl')).releases;
  const tagOf = (sha: string) => sha.slice(0, 12);
  const servedRelease = async () => {
    const r = await stack.fetch('/lazyflow-release.json');
    return r.status === 200 ? (r.json().appTag as string) : `HTTP ${r.status}`;
  };
  const caddyId = async () => (await stack.containers('caddy'))[0];

  beforeAll(async () => {
    // published on every interface (PUBLISH_ADDRESS empty, the production default): IPv6 too
    stack = await startStack({ name: 'frontend', env: { PUBLISH_ADDRESS: '' } });
    src = ReleaseSource.create(repoRoot, 'frontend');
  });
  afterAll(async () => {
    const tags = stack ? journal().map((r) => r.appTag ?? '') : [];
    removeImages(e2eImages().appImage, tags, [e2eImages().appTag]);
    removeImages(e2eImages().proxyImage, tags, [e2eImages().proxyTag]);
    await stack?.down();
    src?.cleanup();
  });

  it('with PUBLISH_ADDRESS empty the site answers on IPv6 as on IPv4', async () => {
    const v6 = await stack.fetch('/health', { connect: '::1' });
    expect(v6.status).toBe(200);
    expect(v6.json().status).toBe('ok');
    expect((await stack.fetch('/health')).status).toBe(200);
  });

  it('a front-end-only rollout under load: zero failed requests, the new Mini App and Caddyfile served, the same Caddy container; rollback serves the old ones', async () => {
    // v1: the first release with a front end of its own (Caddy served its image's Mini App until now)
    const v1 = tagOf(src.commit('v1'));
    const r1 = await runScript('rollout.mts', args('--source', src.dir, '--json'), { timeoutMs: 240_000 });
    expect(r1.code, explain(r1)).toBe(0);
    const seen = await stack.compose('exec', '-T', 'caddy', 'ls', '-la', '/srv/frontend', '/srv/frontend/current/site');
    expect(await servedRelease(), `${seen.stdout}${seen.stderr}\n${explain(r1)}`).toBe(v1);
    const caddy = await caddyId();
    // the same Caddyfile text: Caddy kept its config (a real reload resets connections it is accepting)
    const loads = async () => {
      const out = (await stack.compose('logs', '--no-color', 'caddy')).stdout;
      // a real reload stops the servers of the config it replaces; an equal config is only acknowledged
      return { reloaded: (out.match(/"msg":"servers shutting down/g) ?? []).length, unchanged: (out.match(/"msg":"config is unchanged"/g) ?? []).length };
    };
    expect(await loads(), 'the first front end of its own must not reload Caddy').toEqual({ reloaded: 0, unchanged: 1 });

    // v2 changes only the front end: a marker in the Mini App's page and a header in the Caddyfile
    const v2 = tagOf(src.commit('v2: front end only', (dir) => {
      const page = join(dir, 'app/web/index.html');
      writeFileSync(page, readFileSync(page, 'utf8').replace('<title>LazyFlow</title>', `<title>LazyFlow</title><meta name="${MARK}" content="1" />`));
      const cf = join(dir, 'docker/caddy/Caddyfile');
      writeFileSync(cf, readFileSync(cf, 'utf8').replace('\t\t-Server\n', '\t\t-Server\n\t\tX-Lazyflow-E2e "v2"\n'));
    }));
    const auth = `tma ${signInitData(stack.botToken, { user: { id: 5550101, first_name: 'Front' } })}`;
    const ops = [...appOps(auth), { name: 'GET /', method: 'GET' as const, path: '/' }, { name: 'GET /config.js', method: 'GET' as const, path: '/config.js' }];
    const load = startLoad({ domain: stack.domain, httpsPort: stack.httpsPort, ca: stack.ca }, ops, { concurrency: 6 });
    await sleep(1000);
    const r2 = await runScript('rollout.mts', args('--source', src.dir, '--json'), { timeoutMs: 240_000 });
    await sleep(1000);
    const samples = await load.stop();
    expect(r2.code, explain(r2)).toBe(0);
    const res = JSON.parse(r2.stdout);
    const all = stats(samples);
    // Caddy's reload closes idle keep-alive connections; a request racing that close is sent again, as
    // every HTTP client does (counted, not failed); over HTTP/2 the client is told by GOAWAY instead
    console.log(`front-end rollout under load: ${all.requests} requests (${JSON.stringify(all.byOp)}), ${all.failed} failed, ${all.resent} resent after an idle-connection close; phases ${JSON.stringify(res.phases)}`);
    expect(all.failures, JSON.stringify(all.failures.slice(0, 5))).toEqual([]);
    expect(all.byOp['GET /'].requests).toBeGreaterThan(20);

    const page = await stack.fetch('/');
    expect(page.text()).toContain(MARK);
    expect(page.headers['x-lazyflow-e2e']).toBe('v2');
    expect(await servedRelease()).toBe(v2);
    expect(await caddyId()).toBe(caddy);
    // a changed Caddyfile is loaded: the one reload of this test
    expect((await loads()).reloaded).toBe(1);
    expect(res.smoke.find((s: { name: string }) => s.name === 'frontend')).toMatchObject({ status: 'pass' });
    expect(journal().at(-1)).toMatchObject({ appTag: v2, result: 'ok', proxyImage: `${e2eImages().proxyImage}:${v2}` });

    // rollback to v1: its Mini App and Caddyfile again, under load
    const load2 = startLoad({ domain: stack.domain, httpsPort: stack.httpsPort, ca: stack.ca }, ops, { concurrency: 4 });
    await sleep(500);
    const rb = await runScript('rollback.mts', args('--to', v1), { timeoutMs: 240_000 });
    await sleep(500);
    const back = stats(await load2.stop());
    expect(rb.code, explain(rb)).toBe(0);
    expect(back.failures, JSON.stringify(back.failures.slice(0, 5))).toEqual([]);
    const old = await stack.fetch('/');
    expect(old.text()).not.toContain(MARK);
    expect(old.headers['x-lazyflow-e2e']).toBeUndefined();
    expect(await servedRelease()).toBe(v1);
    expect(await caddyId()).toBe(caddy);

    // smoke on its own agrees; a front end that is not the live release's fails it, naming both
    const smoke = () => runScript('smoke.mts', ['--config', stack.envFile, '--ca', stack.caPem, '--only', 'frontend']);
    const ok = await smoke();
    expect(ok.code, explain(ok)).toBe(0);
    const current = join(stack.stateDir, 'frontend', 'current');
    symlinkSync(v2, `${current}.e2e`);
    renameSync(`${current}.e2e`, current);
    const bad = await smoke();
    symlinkSync(v1, `${current}.e2e`);
    renameSync(`${current}.e2e`, current);
    expect(bad.code, explain(bad)).toBe(1);
    expect(`${bad.stdout}${bad.stderr}`).toContain(`the Mini App served is ${v2}'s, the app runs ${v1}`);
  }, 600_000);
});
