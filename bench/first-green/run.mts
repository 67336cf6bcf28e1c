#!/usr/bin/env node
// Time to first green (not a test): from a prepared VPS (prerequisites installed: this machine; DNS
// pointed: Pebble validates the domain; BotFather done: the fake Bot API knows the token) to a green
// smoke, typing RUNBOOK "First deploy" step 2: git clone, npm ci, setup.mts (its questions answered
// on a pseudo-terminal). Prints each command typed and its seconds; the goal (issue 15): at most 3
// commands after git clone, under 3 minutes on this machine.
//
//   . /var/cache/lazyflow-ci/env.sh && node bench/first-green/run.mts [--out /tmp/benchmarks-first-green.md] [--shape reference|fixture-a]
import minimist from 'minimist';
import { runBenchInVitest } from '../vitest-bench.mts';

const argv = minimist(process.argv.slice(2), { string: ['out', 'shape'] });
if (argv.help) {
  console.log('usage: node bench/first-green/run.mts [--out FILE] [--shape reference|fixture-a]   (default: both)');
  process.exit(0);
}
runBenchInVitest('bench/first-green/vitest.config.mts', { FG_OUT: argv.out ?? '/tmp/benchmarks-first-green.md', ...(argv.shape ? { FG_SHAPE: argv.shape } : {}) }, 60 * 60 * 1000);
