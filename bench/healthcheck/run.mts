#!/usr/bin/env node
// Healthcheck cost benchmark (not a test): what the app container's Docker healthcheck costs on an
// idle app, per hour. Three copies of the same app image run side by side, configured as in
// docker-compose.yml (read-only root, tmpfs /tmp, no capabilities), that differ only in the probe:
//   none       healthcheck disabled (the baseline: an idle app's own cost)
//   bun        ["bun", "/app/src/healthcheck.ts"]: a new Bun process every interval (the old probe)
//   bash       one bash process: GET /health/write over bash's /dev/tcp, status line read with a
//              builtin: the probe docker-compose.yml and the Dockerfile run (read from compose)
//   bash-read  the same bash probe against GET /health (reads only): what the write costs
// bun and bash ask the same question: does GET http://127.0.0.1:$PORT/health/write answer 200 (the
// app serves and its database takes a write; the app writes at most once a second).
//
// Measured over --seconds after all are healthy, from cgroup v1 (the container's cgroup holds every
// probe process Docker execs into it):
//   - CPU seconds per hour: cpuacct.usage of the container, minus nothing (the baseline row shows
//     the idle app alone); and the containerd shim's own CPU plus its reaped children (runc exec,
//     which Docker runs once per probe) from /proc/<shim>/stat.
//   - memory: the container's rss (memory.stat) sampled every second (mean) and the cgroup's peak
//     usage (memory.max_usage_in_bytes, reset at the start: includes page cache).
//   - probe wall time from Docker's own health log (End - Start of the last entries).
//   - the probe alone: CPU per run of each probe command inside the container, 50 runs in a loop,
//     without Docker's per-exec cost (runc init, which runs inside the container's cgroup, and the shim).
// dockerd's and containerd's share of each exec is not attributable per container and is left out.
//
//   . /var/cache/lazyflow-ci/env.sh && node bench/healthcheck/run.mts [--seconds 180] [--interval 2]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import minimist from 'minimist';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const argv = minimist(process.argv.slice(2), { boolean: ['keep', 'help'], default: { seconds: 180, interval: 2 } });
if (argv.help) {
  console.log('usage: node bench/healthcheck/run.mts [--seconds 180] [--interval 2] [--keep]');
  process.exit(0);
}
const seconds = Number(argv.seconds);
const interval = Number(argv.interval);
const BASH_PROBE = fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8').match(/^\s*test: \["CMD", "bash", "-c", (".*")\]\s*$/m)?.[1];
if (!BASH_PROBE) throw new Error('docker-compose.yml: no bash healthcheck found for the app service');
if (!BASH_PROBE.includes('GET /health/write ')) throw new Error('docker-compose.yml: the bash healthcheck no longer asks GET /health/write: update bash-read below');
const BASH_READ_PROBE = BASH_PROBE.replace('GET /health/write ', 'GET /health ');

const sh = (cmd: string, args: string[], env?: NodeJS.ProcessEnv) =>
  execFileSync(cmd, args, { cwd: REPO, encoding: 'utf8', env: env ?? process.env, maxBuffer: 64 << 20 }).trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const suffix = randomBytes(3).toString('hex');
const project = `lzf-bench-health-${suffix}`;
const image = `lazyflow-bench-health:${suffix}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lzf-bench-health-'));
const variants = ['none', 'bun', 'bash', 'bash-read'] as const;
type Variant = (typeof variants)[number];

function composeFile(): string {
  const healthcheck: Record<Variant, string> = {
    none: '    healthcheck:\n      disable: true\n',
    bun: `    healthcheck:\n      test: ["CMD", "bun", "/app/src/healthcheck.ts"]\n      interval: ${interval}s\n      timeout: 2s\n      retries: 3\n`,
    bash: `    healthcheck:\n      test: ["CMD", "bash", "-c", ${BASH_PROBE}]\n      interval: ${interval}s\n      timeout: 2s\n      retries: 3\n`,
    'bash-read': `    healthcheck:\n      test: ["CMD", "bash", "-c", ${BASH_READ_PROBE}]\n      interval: ${interval}s\n      timeout: 2s\n      retries: 3\n`,
  };
  let y = 'services:\n';
  for (const v of variants) {
    for (const sub of ['data', 'uploads']) {
      fs.mkdirSync(path.join(work, v, sub), { recursive: true });
      fs.chownSync(path.join(work, v, sub), 1000, 1000);
    }
    y += `  ${v}:\n    image: ${image}\n    read_only: true\n    tmpfs: ["/tmp:size=64m,mode=1777"]\n    cap_drop: [ALL]\n    security_opt: ["no-new-privileges:true"]\n`;
    y += `    environment:\n      NODE_ENV: production\n      PORT: "3000"\n      APP_URL: https://localhost\n      ALLOWED_ORIGINS: https://localhost\n      WEBHOOK_SECRET: bench-secret-not-for-production-000000\n`;
    y += `    volumes:\n      - ${path.join(work, v, 'data')}:/app/data\n      - ${path.join(work, v, 'uploads')}:/app/uploads\n`;
    y += healthcheck[v];
  }
  const file = path.join(work, 'compose.yml');
  fs.writeFileSync(file, y);
  return file;
}

const cg = (ctl: string, id: string, file: string) => path.join('/sys/fs/cgroup', ctl, 'docker', id, file);
const readNum = (f: string) => Number(fs.readFileSync(f, 'utf8').trim());
const rssOf = (id: string) => Number(/^total_rss (\d+)$/m.exec(fs.readFileSync(cg('memory', id, 'memory.stat'), 'utf8'))![1]);
const ticks = Number(sh('getconf', ['CLK_TCK']));
function shimCpuS(id: string): number {
  // the shim of a container is the process whose cmdline names its id
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('containerd-shim') || !cmd.includes(id)) continue;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / ticks;
    } catch {
      /* raced with an exit */
    }
  }
  return NaN;
}

async function main() {
  console.error(`building ${image} (BUN_IMAGE=${process.env.BUN_IMAGE ?? 'oven/bun:1.4.5-slim'}) ...`);
  sh('docker', ['build', '-q', '--build-arg', `BUN_IMAGE=${process.env.BUN_IMAGE ?? 'oven/bun:1.4.5-slim'}`, '-t', image, '.']);
  const file = composeFile();
  const compose = (...a: string[]) => sh('docker', ['compose', '-p', project, '-f', file, ...a]);
  try {
    compose('up', '-d', '--wait', '--pull', 'never', 'bun', 'bash', 'bash-read'); // --wait refuses a service without a healthcheck
    compose('up', '-d', '--pull', 'never', 'none');
    const ids = Object.fromEntries(variants.map((v) => [v, sh('docker', ['inspect', '-f', '{{.Id}}', compose('ps', '-q', v)])])) as Record<Variant, string>;
    await sleep(10_000); // let boot-time work settle
    for (const v of variants) fs.writeFileSync(cg('memory', ids[v], 'memory.max_usage_in_bytes'), '0');
    const cpu0 = Object.fromEntries(variants.map((v) => [v, readNum(cg('cpuacct', ids[v], 'cpuacct.usage'))]));
    const shim0 = Object.fromEntries(variants.map((v) => [v, shimCpuS(ids[v])]));
    const rss: Record<Variant, number[]> = { none: [], bun: [], bash: [], 'bash-read': [] };
    const t0 = performance.now();
    console.error(`measuring for ${seconds} s (probe interval ${interval} s) ...`);
    while (performance.now() - t0 < seconds * 1000) {
      for (const v of variants) rss[v].push(rssOf(ids[v]));
      await sleep(1000);
    }
    const elapsedS = (performance.now() - t0) / 1000;
    const perHour = 3600 / elapsedS;
    const rows = variants.map((v) => {
      const cpuS = (readNum(cg('cpuacct', ids[v], 'cpuacct.usage')) - cpu0[v]) / 1e9;
      const shimS = shimCpuS(ids[v]) - shim0[v];
      const health = JSON.parse(sh('docker', ['inspect', '-f', '{{json .State.Health}}', ids[v]])) as { Status: string; Log: { Start: string; End: string; ExitCode: number }[] } | null;
      const probeMs = (health?.Log ?? []).map((l) => new Date(l.End).getTime() - new Date(l.Start).getTime()).sort((a, b) => a - b);
      return {
        probe: v,
        status: health?.Status ?? 'no healthcheck',
        'container CPU s/h': (cpuS * perHour).toFixed(1),
        'shim+runc CPU s/h': (shimS * perHour).toFixed(1),
        'rss mean MiB': (rss[v].reduce((a, b) => a + b, 0) / rss[v].length / 2 ** 20).toFixed(1),
        'cgroup peak MiB': (readNum(cg('memory', ids[v], 'memory.max_usage_in_bytes')) / 2 ** 20).toFixed(1),
        'probe wall ms (median)': probeMs.length ? String(probeMs[Math.floor(probeMs.length / 2)]) : '',
      };
    });
    // The probe alone, without Docker's exec machinery (runc init and the shim run for every
    // probe whatever it is): 50 runs of each inside the running app container, CPU from bash's `time`.
    const probeCmd = (JSON.parse(BASH_PROBE!) as string).replaceAll('$$', '$');
    const alone = (cmd: string[]) => {
      const out = execFileSync('docker', ['exec', ids.bash, 'bash', '-c', `TIMEFORMAT='%3U %3S'; time (for i in $(seq 50); do "$@" || exit 1; done) 2>&1`, '_', ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const [u, sy] = out.trim().split(/\s+/).slice(-2).map(Number);
      return ((u + sy) * 1000) / 50;
    };
    const readCmd = (JSON.parse(BASH_READ_PROBE) as string).replaceAll('$$', '$');
    const aloneMs = { none: NaN, bun: alone(['bun', '/app/src/healthcheck.ts']), bash: alone(['bash', '-c', probeCmd]), 'bash-read': alone(['bash', '-c', readCmd]) } as Record<Variant, number>;
    for (const r of rows) (r as Record<string, string>)['probe alone CPU ms'] = Number.isNaN(aloneMs[r.probe]) ? '' : aloneMs[r.probe].toFixed(1);
    const cols = Object.keys(rows[0]);
    const md = [
      `Healthcheck cost, idle app, ${elapsedS.toFixed(0)} s measured, probe every ${interval} s, scaled to one hour (${os.cpus().length} cores, load avg ${os.loadavg()[0].toFixed(2)}):`,
      '',
      `| ${cols.join(' | ')} |`,
      `| ${cols.map(() => '---').join(' | ')} |`,
      ...rows.map((r) => `| ${cols.map((c) => r[c as keyof typeof r]).join(' | ')} |`),
    ].join('\n');
    console.log(md);
  } finally {
    if (!argv.keep) {
      try {
        compose('down', '-v', '-t', '5');
      } catch (e) {
        console.error(`cleanup: ${(e as Error).message}`);
      }
      try {
        sh('docker', ['image', 'rm', image]);
      } catch {
        /* still used: leave it */
      }
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
}

await main();
