// The database snapshot in a process of its own, started by snapshot-as-app.mts with the app's uid
// and gid: argv[2] is {src, dest, opts}; the result (or the error) is one JSON line on stdout.
import { snapshotDatabase, type SnapshotOptions } from './sqlite-snapshot.mts';

const req = JSON.parse(process.argv[2] ?? '{}') as { src: string; dest: string; opts: SnapshotOptions };
try {
  const result = await snapshotDatabase(req.src, req.dest, req.opts);
  process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`);
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  process.stdout.write(`${JSON.stringify({ ok: false, message: e?.message ?? String(err), code: e?.code ?? null })}\n`);
  process.exitCode = 1;
}
