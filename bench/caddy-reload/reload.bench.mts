// Started by bench/caddy-reload/run.mts (see there). One stack (Pebble, real certificate), fresh-connection
// POST /tasks writers and keep-alive GET load through Caddy, then reloads of each kind with a pause
// between them; prints one row per kind.
import { afterAll, beforeAll, it } from 'vitest';
import { startStack, type Stack } from '../../test/support/stack.ts';
import { createTask } from '../../test/support/backup.ts';
import { startLoad, stats } from '../../test/support/load.mts';

const RELOADS = Number(process.env.RELOAD_BENCH_RELOADS ?? 30);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ name: 'reload-bench' });
});
afterAll(async () => {
  await stack?.down();
});

async function measure(kind: 'unchanged' | 'changed') {
  let running = true;
  let posts = 0;
  const postFailures: string[] = [];
  const writers = Array.from({ length: 4 }, async () => {
    while (running) {
      posts++;
      try {
        await createTask(stack, `reload-${kind}-${posts}`);
      } catch (e) {
        postFailures.push((e as Error).message);
      }
    }
  });
  const load = startLoad({ domain: stack.domain, httpsPort: stack.httpsPort, ca: stack.ca }, [{ name: 'GET /health', method: 'GET', path: '/health' }], { concurrency: 4, pauseMs: 5 });
  let reloadFailures = 0;
  const t0 = performance.now();
  for (let i = 0; i < RELOADS; i++) {
    // a changed Caddyfile: the image's own plus a comment-free difference (a response header) that
    // differs each time, written inside the container's writable /tmp
    const script = kind === 'unchanged'
      ? 'caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile'
      : `sed 's/-Server/-Server\\n\\t\\tX-Reload-Bench "${i}"/' /etc/caddy/Caddyfile > /tmp/Caddyfile.bench && caddy reload --config /tmp/Caddyfile.bench --adapter caddyfile`;
    const r = await stack.compose('exec', '-T', 'caddy', 'sh', '-c', script);
    if (r.code !== 0) reloadFailures++;
    await sleep(300);
  }
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  await Promise.all(writers);
  const gets = stats(await load.stop());
  // back to the image's config for the next kind
  await stack.compose('exec', '-T', 'caddy', 'caddy', 'reload', '--config', '/etc/caddy/Caddyfile', '--adapter', 'caddyfile');
  return { kind, reloads: RELOADS, reloadFailures, seconds, posts, postFailed: postFailures.length, postErrors: [...new Set(postFailures)].slice(0, 3), gets: gets.requests, getFailed: gets.failed, getResent: gets.resent };
}

it('Caddy reloads under load', async () => {
  const rows = [await measure('unchanged'), await measure('changed')];
  console.log('\n| reloads of the Caddyfile | reloads | POSTs, fresh connections | failed | keep-alive GETs | failed | resent after an idle close |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.kind} | ${r.reloads}${r.reloadFailures ? ` (${r.reloadFailures} failed)` : ''} | ${r.posts} | ${r.postFailed} (${(r.postFailed / r.reloads).toFixed(2)} per reload) | ${r.gets} | ${r.getFailed} | ${r.getResent} |`);
  }
  for (const r of rows) if (r.postErrors.length) console.log(`${r.kind}: POST errors seen: ${r.postErrors.join('; ')}`);
});
