#!/usr/bin/env node
// Rollout benchmark (not a test): a throwaway local-mode stack (Caddy internal CA), continuous HTTPS
// load through Caddy (concurrent GETs and POSTs with bodies), and N real rollouts of new commits.
// Reports, per rollout: requests and failures, max and p99 latency of the requests in flight during
// the swap next to the app's start-to-healthy time measured in the same run, and wall time per phase.
//
//   . /var/cache/lazyflow-ci/env.sh && node bench/rollout/run.mts [--rounds 3] [--concurrency 8] [--out /tmp/benchmarks-rollout.md]
//       [--ready-path /health]   Caddy's health check on /health instead of the lame-duck /ready: the
//                                contract's readiness item absent (what an app without one costs)
//       [--change-app]           each round's commit changes the app's source (a comment), so its image
//                                has new content and the contract gate runs; without it the rounds are
//                                empty commits, whose images the gate has passed before (content cache)
//
// Targets (issue 4): 0 failed; max latency during the swap <= 1.5 x start-to-healthy;
// rollout overhead beyond build and backup < 10 s.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import minimist from 'minimist';
import { ReleaseSource, removeImages } from '../../test/support/release-source.mts';
import { appOps, startLoad, stats, sampleContainers, type Sample } from '../../test/support/load.mts';
import { signInitData } from '../../test/support/telegram.ts';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const argv = minimist(process.argv.slice(2), { string: ['out', 'ready-path'], boolean: ['change-app', 'keep'], default: { rounds: 3, concurrency: 8 } });
if (argv.help) {
  console.log('usage: node bench/rollout/run.mts [--rounds 3] [--concurrency 8] [--ready-path /health] [--change-app] [--out FILE] [--keep]');
  process.exit(0);
}
const rounds = Number(argv.rounds);
const concurrency = Number(argv.concurrency);

const freePort = () => new Promise<number>((res, rej) => {
  const s = net.createServer();
  s.on('error', rej);
  s.listen(0, '127.0.0.1', () => {
    const p = (s.address() as net.AddressInfo).port;
    s.close(() => res(p));
  });
});

function sh(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, maxBuffer: 64 << 20 }).toString();
}

function runNode(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO, script), ...args], { env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}

const suffix = randomBytes(3).toString('hex');
const project = `lzf-bench-rollout-${suffix}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${project}-`));
const stateDir = path.join(dir, 'state');
for (const sub of ['data', 'uploads', 'backups', 'logs']) fs.mkdirSync(path.join(stateDir, sub), { recursive: true, mode: 0o750 });
for (const sub of ['data', 'uploads']) fs.chownSync(path.join(stateDir, sub), 1000, 1000);
const [httpPort, httpsPort] = [await freePort(), await freePort()];
const appImage = `lzf-bench-app-${suffix}`;
const proxyImage = `lzf-bench-caddy-${suffix}`;
const envFile = path.join(dir, 'env.local');
fs.writeFileSync(envFile, [
  `COMPOSE_PROJECT_NAME=${project}`, `STATE_DIR=${stateDir}`, `APP_IMAGE=${appImage}`, `PROXY_IMAGE=${proxyImage}`, 'PROXY_TAG=bench',
  'PUBLISH_ADDRESS=127.0.0.1', `HTTP_PORT=${httpPort}`, `HTTPS_PORT=${httpsPort}`, 'DOMAIN=localhost', 'APP_URL=https://localhost',
  'ALLOWED_ORIGINS=https://localhost', 'BOT_TOKEN=', `WEBHOOK_SECRET=${randomBytes(24).toString('hex')}`, 'JOB_HEARTBEAT_MS=1000',
  ...(argv['ready-path'] ? [`READY_PATH=${argv['ready-path']}`] : []), '',
].join('\n'), { mode: 0o600 });
const src = ReleaseSource.create(REPO, 'bench');
const composeEnv = { ...process.env };
const compose = (...a: string[]) => sh('docker', ['compose', '--project-directory', REPO, '--env-file', envFile, ...a], composeEnv);

interface Round {
  round: number;
  tag: string;
  code: number | null;
  requests: number;
  failed: number;
  swapRequests: number;
  swapMaxMs: number;
  swapP99Ms: number;
  overallP50Ms: number;
  overallMaxMs: number;
  startToHealthyMs: number;
  startToListenMs: number;
  stopMs: number;
  startMs: number;
  swapTotalMs: number;
  phases: Record<string, number>;
  wallMs: number;
  overheadMs: number;
  /** the same from the rollout's wall clock (the sum of phases counts the front-end build and the
   * contract gate twice: they run side by side) */
  wallOverheadMs: number;
  maxAppContainers: number;
  containerSamples: number;
  /** the contract gate's decision (not-cached, cached, ...) */
  contract?: string;
  failures: Sample[];
}

const results: Round[] = [];
let exitCode = 0;
try {
  // first deploy (builds both images, brings the stack up) on the clone's HEAD
  console.error(`bench: ${project} on https://localhost:${httpsPort} (local mode)`);
  const first = await runNode('scripts/rollout.mts', ['--config', envFile, '--source', src.dir, '--no-notify', '--json']);
  if (first.code !== 0) throw new Error(`first deploy failed:\n${first.stderr}`);
  const ca = compose('exec', '-T', 'caddy', 'cat', '/data/caddy/pki/authorities/local/root.crt');
  const auth = `tma ${signInitData('1:LAZYFLOW_LOCAL_MODE_NOT_A_REAL_TOKEN', { user: { id: 4242, first_name: 'Bench' } })}`;
  const countApp = async () => sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'label=com.docker.compose.service=app']).split('\n').filter(Boolean).length;

  for (let i = 1; i <= rounds; i++) {
    const sha = src.commit(`bench round ${i}`, argv['change-app'] ? (d) => fs.appendFileSync(path.join(d, 'app', 'src', 'server.ts'), `// bench round ${i} ${suffix}\n`) : undefined);
    const load = startLoad({ domain: 'localhost', httpsPort, ca }, appOps(auth), { concurrency });
    const sampler = sampleContainers(countApp, 50);
    await new Promise((r) => setTimeout(r, 2000));
    const r = await runNode('scripts/rollout.mts', ['--config', envFile, '--source', src.dir, '--no-notify', '--json']);
    await new Promise((r2) => setTimeout(r2, 2000));
    const samples = await load.stop();
    const seen = await sampler.stop();
    if (r.code !== 0) {
      console.error(r.stderr);
      exitCode = 1;
    }
    const res = JSON.parse(r.stdout || '{}');
    const sw = res.swap ?? {};
    const win = sw.beganAt ? { from: sw.beganAt, to: sw.endedAt } : undefined;
    const all = stats(samples);
    const during = stats(samples, win);
    const phases: Record<string, number> = res.phases ?? {};
    // the app's own boot time: container start -> its "listening" log line
    let startToListenMs = NaN;
    try {
      const id = sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'label=com.docker.compose.service=app']).trim();
      const startedAt = Date.parse(sh('docker', ['inspect', '--format', '{{.State.StartedAt}}', id]).trim());
      const listening = sh('docker', ['logs', id]).split('\n').map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((j) => j?.msg === 'listening');
      if (listening) startToListenMs = Date.parse(listening.ts) - startedAt;
    } catch {
      /* leave NaN */
    }
    const wall = Object.values(phases).reduce((a, b) => a + b, 0);
    results.push({
      round: i, tag: sha.slice(0, 12), code: r.code, requests: all.requests, failed: all.failed,
      swapRequests: during.requests, swapMaxMs: during.maxMs, swapP99Ms: during.p99Ms, overallP50Ms: all.p50Ms, overallMaxMs: all.maxMs,
      startToHealthyMs: sw.startToHealthyMs ?? NaN, startToListenMs, stopMs: sw.stopMs ?? NaN, startMs: sw.startMs ?? NaN, swapTotalMs: sw.totalMs ?? NaN,
      phases, wallMs: r.ms, overheadMs: wall - (phases.build ?? 0) - (phases.backup ?? 0), wallOverheadMs: r.ms - (phases.build ?? 0) - (phases.backup ?? 0),
      maxAppContainers: Math.max(0, ...seen.map((s) => s.n)), containerSamples: seen.length, failures: all.failures.slice(0, 5), contract: res.contract?.decision,
    });
    console.error(`round ${i}: ${all.requests} requests, ${all.failed} failed, swap max ${during.maxMs.toFixed(0)} ms, start-to-healthy ${sw.startToHealthyMs} ms`);
  }
} catch (e) {
  console.error(`bench failed: ${(e as Error).message}`);
  exitCode = 1;
} finally {
  if (!argv.keep) {
    try {
      compose('down', '-v', '--remove-orphans', '--timeout', '5');
    } catch {
      /* ignore */
    }
    const tags = sh('docker', ['images', appImage, '--format', '{{.Tag}}']).split('\n').filter(Boolean);
    removeImages(appImage, tags);
    removeImages(proxyImage, ['bench']);
    fs.rmSync(dir, { recursive: true, force: true });
    src.cleanup();
  }
}

// ---- report ----
const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const s1 = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : '-');
const cpu = os.cpus()[0]?.model ?? '?';
const dockerV = (() => { try { return sh('docker', ['version', '--format', '{{.Server.Version}}']).trim(); } catch { return '?'; } })();
const composeV = (() => { try { return sh('docker', ['compose', 'version', '--short']).trim(); } catch { return '?'; } })();
const phaseNames = ['preflight', 'lock', 'build', 'preflight_stack', 'frontend', 'contract', 'backup', 'swap', 'frontend_switch', 'health', 'telegram', 'smoke', 'record', 'notify'];
const lines: string[] = [];
lines.push(`### Rollout under load (bench/rollout/run.mts, ${new Date().toISOString().slice(0, 10)})`);
lines.push('');
lines.push(`Machine: ${os.cpus().length} vCPU (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Docker ${dockerV}, Compose ${composeV}, Node ${process.versions.node}.`);
lines.push(`Caddy's upstream health check: ${argv['ready-path'] ? `READY_PATH=${argv['ready-path']} (no lame-duck readiness signal: the toolkit drains the app itself, docker/drain.mts)` : 'the app\'s /ready (503 for a lame-duck second after SIGTERM)'}.`);
lines.push(`Swap mode: ${process.env.LAZYFLOW_SWAP === 'stop-first' ? 'stop-first (compose stop app, then compose up)' : 'recreate (one compose up: create new, stop + remove old, start new)'}.`);
lines.push(`Stack: local mode (Caddy internal CA), app + Caddy as in docker-compose.yml. Load: ${concurrency} concurrent keep-alive HTTPS clients through Caddy, round-robin GET /health, GET /tasks, POST /tasks (~1 KiB JSON body, initData auth), back to back. Each round rolls out a new commit (real docker build, cached layers).`);
lines.push('');
lines.push('| round | requests | failed | in flight during swap | max latency during swap | p99 during swap | app start-to-healthy | max / start-to-healthy | app start-to-listening | swap (stop + start + to healthy) | max app containers (samples) |');
lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  lines.push(`| ${r.round} | ${r.requests} | ${r.failed} | ${r.swapRequests} | ${f0(r.swapMaxMs)} ms | ${f0(r.swapP99Ms)} ms | ${f0(r.startToHealthyMs)} ms | ${(r.swapMaxMs / r.startToHealthyMs).toFixed(2)} | ${f0(r.startToListenMs)} ms | ${s1(r.swapTotalMs)} s (${f0(r.stopMs)} + ${f0(r.startMs)} + ${f0(r.startToHealthyMs)} ms) | ${r.maxAppContainers} (${r.containerSamples}) |`);
}
lines.push('');
lines.push(`| round | ${phaseNames.join(' | ')} | total | overhead beyond build + backup (wall clock) | (sum of phases) |`);
lines.push(`|---|${phaseNames.map(() => '---').join('|')}|---|---|---|`);
for (const r of results) {
  lines.push(`| ${r.round} | ${phaseNames.map((p) => (r.phases[p] !== undefined ? `${s1(r.phases[p])} s` : '-')).join(' | ')} | ${s1(r.wallMs)} s | ${s1(r.wallOverheadMs)} s | ${s1(r.overheadMs)} s |`);
}
lines.push('');
lines.push(`Load average while it ran: ${os.loadavg().map((x) => x.toFixed(1)).join(', ')} (1, 5, 15 min; ${os.cpus().length} vCPU).`);
const worstRatio = Math.max(...results.map((r) => r.swapMaxMs / r.startToHealthyMs));
// from the wall clock: the phases that run side by side (the build with preflight's stack checks and the
// front end; the front end with the contract gate) would count twice in a sum, and the wall clock also
// holds what no phase times (Node's start-up, twice: the operator's process and the detached worker)
const worstOverhead = Math.max(...results.map((r) => r.wallOverheadMs));
const totalFailed = results.reduce((a, r) => a + r.failed, 0);
lines.push('');
lines.push(`Targets: 0 failed -> ${totalFailed} failed of ${results.reduce((a, r) => a + r.requests, 0)} (${totalFailed === 0 ? 'met' : 'MISSED'}); ` +
  `max latency during swap <= 1.5 x start-to-healthy -> worst ${worstRatio.toFixed(2)} x (${worstRatio <= 1.5 ? 'met' : 'MISSED'}); ` +
  `overhead beyond build and backup (wall clock) < 10 s -> worst ${s1(worstOverhead)} s (${worstOverhead < 10_000 ? 'met' : 'MISSED'}).`);
lines.push(`Rounds: ${argv['change-app'] ? 'each commit changes the app source (new image content: the contract gate runs)' : 'empty commits (the image content is unchanged: the contract gate finds its earlier pass)'}; contract gate per round: ${results.map((r) => r.contract ?? '-').join(', ')}.`);
for (const r of results) if (r.failures.length) lines.push(`Round ${r.round} failures: ${JSON.stringify(r.failures)}`);
lines.push('');
lines.push('Start-to-healthy is container start -> Docker reports healthy; the healthcheck runs every 2 s, so it is quantized to ~2 s. Start-to-listening (container start -> the app logs "listening") is the app\'s real boot time. A request held during the swap waits for: the old app\'s graceful stop + compose recreating the container + the new app\'s boot (+ up to one 100 ms Caddy retry interval).');
const report = lines.join('\n') + '\n';
process.stdout.write(report);
if (argv.out) fs.writeFileSync(String(argv.out), report);
if (!results.length || totalFailed > 0) exitCode = 1;
process.exit(exitCode);
