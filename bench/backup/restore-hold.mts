#!/usr/bin/env node
// How long a restore holds requests (app stopped until healthy again: what Caddy holds, up to 30 s)
// for databases of different sizes. The live state is moved aside by rename, so the hold must not
// grow with the database; verification (which does) runs before the stop. Prints one line per size
// and the ratio of the largest hold to the smallest, measured in the same run.
//   node bench/backup/restore-hold.mts [--mib 32,1024] [--dir /var/tmp/lazyflow-bench]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import minimist from 'minimist';
import { makeDb } from './make-db.mts';
import { benchRestore } from './restore-bench.mts';

const argv = minimist(process.argv.slice(2), { string: ['mib', 'dir'], default: { mib: '32,1024', dir: '/var/tmp/lazyflow-bench' } });
const sizes = String(argv.mib).split(',').map(Number).filter((n) => n > 0);
mkdirSync(argv.dir, { recursive: true });
const rows: { mib: number; hold: number; detail: string }[] = [];
for (const mib of sizes) {
  const db = join(argv.dir, `restore-hold-${mib}.db`);
  const made = makeDb(db, mib * 2 ** 20, (m) => console.error(m));
  const r = await benchRestore(db, (m) => console.error(m));
  rows.push({ mib: Math.round(made.bytes / 2 ** 20), hold: r.phases.hold ?? NaN, detail: r.detail });
  console.log(`${Math.round(made.bytes / 2 ** 20)} MiB database: requests held ${((r.phases.hold ?? NaN) / 1000).toFixed(1)} s (${r.detail})`);
}
if (rows.length > 1) {
  const ratio = rows.at(-1)!.hold / rows[0].hold;
  console.log(`hold ratio ${rows.at(-1)!.mib} MiB / ${rows[0].mib} MiB: ${ratio.toFixed(2)}x (database ${(rows.at(-1)!.mib / rows[0].mib).toFixed(0)}x larger)`);
}
