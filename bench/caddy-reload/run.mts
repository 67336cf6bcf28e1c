#!/usr/bin/env node
// Caddy reload bench (not a test): what a config reload of the running Caddy costs the requests in
// flight. A rollout makes Caddy load the release's Caddyfile just before the swap; Caddy skips a config
// equal to the one it runs, so only a release that changes the Caddyfile reloads. Under POSTs on fresh
// connections (one per request, as Telegram's deliveries and most API clients) and GETs on keep-alive
// connections, it counts the requests that failed across --reloads reloads of each kind:
//   unchanged  `caddy reload` of the same Caddyfile (every release whose Caddyfile did not change)
//   changed    a Caddyfile that differs each time (a release that changes it)
//
//   . /var/cache/lazyflow-ci/env.sh && node bench/caddy-reload/run.mts [--reloads 30]
import minimist from 'minimist';
import { runBenchInVitest } from '../vitest-bench.mts';

const argv = minimist(process.argv.slice(2), { default: { reloads: 30 } });
if (argv.help) {
  console.log('usage: node bench/caddy-reload/run.mts [--reloads 30]');
  process.exit(0);
}
runBenchInVitest('bench/caddy-reload/vitest.config.mts', { RELOAD_BENCH_RELOADS: String(argv.reloads) }, 60 * 60 * 1000);
