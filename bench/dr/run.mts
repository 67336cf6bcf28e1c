#!/usr/bin/env node
// RTO bench (not a test): seconds from an empty machine state (no STATE_DIR, no app or proxy
// container, no app image) to a green smoke, through `recover-vps.mts` as RUNBOOK "The VPS is gone"
// runs it, for a database of --mib MiB, split by phase. Offsite: restic to `rclone serve restic`.
//
//   . /var/cache/lazyflow-ci/env.sh && node bench/dr/run.mts [--mib 1024] [--out /tmp/benchmarks-dr.md]
import minimist from 'minimist';
import { runBenchInVitest } from '../vitest-bench.mts';

const argv = minimist(process.argv.slice(2), { string: ['out'], default: { mib: 1024 } });
if (argv.help) {
  console.log('usage: node bench/dr/run.mts [--mib 1024] [--out FILE]');
  process.exit(0);
}
runBenchInVitest('bench/dr/vitest.config.mts', { DR_MIB: String(argv.mib), DR_OUT: argv.out ?? '/tmp/benchmarks-dr.md' }, 60 * 60 * 1000);
