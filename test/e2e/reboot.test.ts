// The safety net from the first minute (issue 16): on a stack set up exactly as RUNBOOK's first deploy
// leaves it (the first rollout only: no schedules.mts --install, no backup), nothing but what that
// rollout installed heals an interruption. There is no systemd and no cron daemon here, so this file
// plays cron (as test/e2e/schedules.test.ts does): it reads the cron file the rollout wrote into the
// stack's LAZYFLOW_CRON_DIR and runs its lines through /bin/sh with the file's variables and nothing
// else; the `* * * * *` line every RECOVERY_INTERVAL_S (the e2e interval, not the product's minute,
// so CI stays fast), the `@reboot` line (with its own `sleep 20`) after a "boot".
//
// Cases:
//   - the first rollout installs the net; preflight, smoke, status and schedules.mts show it
//   - issue 16 case (1): LAZYFLOW_SWAP=stop-first, kill -9 of the rollout and its detached worker right
//     after the old app stopped: the site heals with no operator action
//   - LAZYFLOW_E2E_REBOOT=1 only (CI sets it in .ci/run): the Docker engine itself restarted (every
//     container on this machine stops; restart policies apply; none of the toolkit runs until the
//     "boot") in the middle of a swap, of an automatic revert and of a restore, under load
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeDocker, requireDocker } from '../support/docker.ts';
import { startStack, e2eImages, type Stack } from '../support/stack.ts';
import { repoRoot, run, runScript, type RunResult } from '../support/run.ts';
import { BAD, ReleaseSource, removeImages } from '../support/release-source.mts';
import { ownDockerd, restartEngine, type EngineRestart } from '../support/engine.ts';
import { seedAndBackUp } from '../support/backup.ts';
import {
  RECOVERY_INTERVAL_S, SWAP_BOUND_S, appContainerStates, describeApps, ensureServing, explainResult, inProgress, releases, restoreJournal, revertUnderway, runFault, summarize,
  swapUnderway, type FaultResult,
} from '../support/faults.ts';

const REBOOT = process.env.LAZYFLOW_E2E_REBOOT === '1';
const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const KILL9_BOUND_S = RECOVERY_INTERVAL_S + SWAP_BOUND_S;
/** the cron file's @reboot line sleeps this long before its recovery run (jobs.mts), as the systemd timer's OnBootSec */
const BOOT_DELAY_S = 20;
/** after a reboot: from the engine answering again, the boot run (or the every-minute line, whichever first) plus the swap */
const REBOOT_BOUND_S = Math.max(BOOT_DELAY_S, RECOVERY_INTERVAL_S) + SWAP_BOUND_S;
const SETTLE_TIMEOUT_S = 120;
const CASE_TIMEOUT_MS = 480_000;
// the release images this file builds: names of its own, removed at the end (as adopter.test.ts does)
const IMAGES = { appImage: 'lazyflow-e2e-reboot-app', proxyImage: 'lazyflow-e2e-reboot-caddy' };

// ---------------------------------------------------------------------------------------------
// cron, as the cron daemon would run the file the rollout installed

interface CronRun { line: string; at: number; code: number | null }

class Cron {
  readonly runs: CronRun[] = [];
  private readonly children = new Set<ChildProcess>();
  private timer: NodeJS.Timeout | undefined;
  private readonly vars: Record<string, string>;
  private readonly reboot: string[];
  private readonly everyMinute: string[];
  private constructor(vars: Record<string, string>, reboot: string[], everyMinute: string[]) {
    this.vars = vars;
    this.reboot = reboot;
    this.everyMinute = everyMinute;
  }

  /** the cron file of the stack's project in its LAZYFLOW_CRON_DIR: its variables, @reboot and every-minute commands (cron's \% unescaped) */
  static read(stack: Stack): Cron {
    const file = join(stack.env.LAZYFLOW_CRON_DIR, `lazyflow-schedules-${stack.project}`);
    const vars: Record<string, string> = {};
    const reboot: string[] = [];
    const every: string[] = [];
    for (const l of readFileSync(file, 'utf8').split('\n')) {
      if (!l || l.startsWith('#')) continue;
      const v = /^([A-Z_]+)=(.*)$/.exec(l);
      if (v) vars[v[1]] = v[2];
      const m = /^(@reboot|\* \* \* \* \*) root (.*)$/.exec(l);
      if (m) (m[1] === '@reboot' ? reboot : every).push(m[2].replace(/\\%/g, '%'));
    }
    return new Cron(vars, reboot, every);
  }

  get lines() {
    return { reboot: this.reboot, everyMinute: this.everyMinute };
  }

  private spawnLine(line: string) {
    // cron's environment: the file's variables, HOME and LOGNAME, nothing of the test runner's
    const env: Record<string, string | undefined> = {};
    for (const k of Object.keys(process.env)) env[k] = undefined;
    const child = spawn(this.vars.SHELL ?? '/bin/sh', ['-c', line], { cwd: '/root', env: { ...env, ...this.vars, HOME: '/root', LOGNAME: 'root' }, stdio: 'ignore', detached: true });
    const r: CronRun = { line, at: Date.now(), code: null };
    this.children.add(child);
    child.on('exit', (code) => {
      r.code = code;
      this.children.delete(child);
      this.runs.push(r);
    });
  }

  /** the every-minute lines, every `intervalS` (each run on its own; flock -n in the line keeps them from overlapping) */
  start(intervalS: number) {
    this.stopSchedule();
    const tick = () => {
      for (const l of this.everyMinute) this.spawnLine(l);
      this.timer = setTimeout(tick, intervalS * 1000);
    };
    this.timer = setTimeout(tick, intervalS * 1000);
  }

  private stopSchedule() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** the machine goes down: no new run, and every run in flight dies with it */
  halt() {
    this.stopSchedule();
    for (const c of this.children) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** the machine is up again: the @reboot lines now, the every-minute lines on their schedule */
  boot(intervalS: number) {
    for (const l of this.reboot) this.spawnLine(l);
    this.start(intervalS);
  }

  async stop() {
    this.stopSchedule();
    const deadline = Date.now() + 120_000;
    while (this.children.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    this.halt();
  }
}

function expectNoWriteLost(r: FaultResult, stateDir: string) {
  const why = explainResult(r);
  expect(r.secondsToSettled, why).not.toBeNull();
  expect(r.maxAppContainers, why).toBeLessThanOrEqual(1);
  expect(r.data.acked, why).toBeGreaterThan(0);
  expect(r.data.lostWrites, why).toEqual([]);
  expect(r.data.updates, why).toBeGreaterThan(5);
  // database effects of Telegram updates are exactly once (README): every update the app acknowledged
  // is in a database; one not there is still queued at the Bot API (never acknowledged: Telegram sends
  // it again). Replies are at least once.
  expect(r.data.lostUpdates.length - r.data.stillQueued, why).toBe(0);
  // recovery finished (or undid) what was interrupted: nothing is left in progress
  expect(inProgress(stateDir), why).toEqual([]);
}

describeDocker('the safety net from the first rollout on: interruptions and reboots heal with no operator action', () => {
  let stack: Stack;
  let src: ReleaseSource;
  let good = '';
  let cron: Cron;
  let first: RunResult;
  const builtTags: string[] = [];
  const tagOf = (sha: string) => sha.slice(0, 12);
  const args = (...extra: string[]) => ['--source', src.dir, '--ca', stack.caPem, '--no-notify', '--skip-smoke', ...extra];
  const version = async () => (await stack.fetch('/health')).json().version as string;

  beforeAll(async () => {
    stack = await startStack({ name: 'reboot', start: false, images: IMAGES });
    src = ReleaseSource.create(repoRoot, 'reboot');
    // "the internet": Pebble as Let's Encrypt, the fake Bot API as Telegram; then RUNBOOK's first deploy, and nothing else
    await stack.upSupport();
    good = src.head;
    builtTags.push(tagOf(good));
    first = await runScript('rollout.mts', ['--config', stack.envFile, '--source', src.dir, '--ca', stack.caPem, '--no-notify'], { timeoutMs: 600_000 });
    expect(first.code, explain(first)).toBe(0);
    cron = Cron.read(stack);
    cron.start(RECOVERY_INTERVAL_S);
  }, 900_000);
  beforeEach(async () => {
    if (!stack || first?.code !== 0) return;
    src.checkout(good);
    await ensureServing(stack, args());
  }, 300_000);
  afterAll(async () => {
    await cron?.stop();
    const tags = [...builtTags, ...(stack ? releases(stack.stateDir).map((r) => r.appTag ?? '') : []), 'local'];
    removeImages(IMAGES.appImage, tags);
    removeImages(IMAGES.proxyImage, tags);
    await stack?.down();
    src?.cleanup();
  }, CASE_TIMEOUT_MS);

  it('the first rollout alone installs recovery at boot and every minute; preflight, smoke, status and schedules.mts show it', async () => {
    const out = first.stdout + first.stderr;
    const cronFile = join(stack.env.LAZYFLOW_CRON_DIR, `lazyflow-schedules-${stack.project}`);
    expect(out).toContain(`wrote ${cronFile}`);
    expect(out).toMatch(new RegExp(`safety net: recovery at boot and every minute: cron file ${cronFile.replace(/[.]/g, '\\.')} .*\\(installed by this rollout\\)`));
    // the two lines cron runs, recovery of this env file and nothing else (the other schedules stay schedules.mts --install's),
    // hardened as every schedule is (files created 0600, the trust check before node runs as root)
    expect(cron.lines.reboot).toHaveLength(1);
    expect(cron.lines.everyMinute).toHaveLength(1);
    expect(cron.lines.reboot[0]).toMatch(new RegExp(`^sleep ${BOOT_DELAY_S}; umask 077; cd \\S+ && NO_COLOR=1 LAZYFLOW_TRUST_CHECK=1 flock -n \\S+ \\S+/node \\S+/scripts/recover\\.mts --config ${stack.envFile} --quiet >>`));
    expect(cron.lines.everyMinute[0]).toBe(cron.lines.reboot[0].replace(/^sleep \d+; /, ''));

    const smoke = await runScript('smoke.mts', ['--config', stack.envFile, '--only', 'safety-net', '--json', '--ca', stack.caPem], { timeoutMs: 60_000 });
    expect(smoke.code, explain(smoke)).toBe(0);
    expect(JSON.parse(smoke.stdout).results).toMatchObject([{ name: 'safety-net', status: 'pass', detail: expect.stringContaining(cronFile) }]);
    const status = await runScript('status.mts', ['--config', stack.envFile, '--json', '--ca', stack.caPem], { timeoutMs: 60_000 });
    expect(JSON.parse(status.stdout).safetyNet, explain(status)).toMatchObject({ inPlace: true, state: 'in-place' });
    const pre = await runScript('rollout.mts', ['--config', stack.envFile, '--check', '--json'], { timeoutMs: 120_000 });
    expect((JSON.parse(pre.stdout) as { results: { name: string; level: string }[] }).results.find((x) => x.name === 'safety net'), explain(pre)).toMatchObject({ level: 'ok' });
    const sched = await runScript('schedules.mts', ['--config', stack.envFile, '--status', '--json'], { timeoutMs: 60_000 });
    const s = JSON.parse(sched.stdout);
    expect(s.jobs.map((j: { id: string; installed: boolean }) => `${j.id}:${j.installed}`)).toEqual(['backup:false', 'drill:false', 'watch:false', 'recover:true']);
    expect(s.next).toMatch(/--install +# only recovery is installed \(the rollout's safety net\): this adds backup, drill, watch$/);
  });

  it(`issue 16 (1): LAZYFLOW_SWAP=stop-first, kill -9 of the rollout and its worker right after the old app stopped: back within ${KILL9_BOUND_S} s by the installed cron line alone, no write lost`, async () => {
    const sha = src.commit('v2 (stop-first)');
    builtTags.push(tagOf(sha));
    const [oldApp] = await stack.containers('app');
    const oldStopped = async () => (await run('docker', ['inspect', '--format', '{{.State.Status}}', oldApp])).stdout.trim() === 'exited';
    const runsBefore = cron.runs.length;
    process.env.LAZYFLOW_SWAP = 'stop-first'; // the rollout (and its detached worker) inherit it
    let r: FaultResult;
    try {
      r = await runFault({
        stack, label: 'rollout stop-first', script: 'rollout.mts', args: args(), interruption: 'reboot', recoveryIntervalS: null, settleTimeoutS: SETTLE_TIMEOUT_S,
        at: { what: 'the old app stopped (stop-first)', when: oldStopped },
      });
    } finally {
      delete process.env.LAZYFLOW_SWAP;
    }
    console.log(summarize(r));
    const why = `${explainResult(r)}\ncron runs since the fault: ${JSON.stringify(cron.runs.slice(runsBefore))}`;
    expectNoWriteLost(r, stack.stateDir);
    // the kill leaves the old app stopped through the API and the new one absent or only Created: down until recovery
    console.log(`apps 2 s after the kill: ${r.appsAfterFault}`);
    expect(r.secondsToFirst2xx, why).toBeLessThanOrEqual(KILL9_BOUND_S);
    // the installed line ran, and the release the kill left in progress is finished or undone (expectNoWriteLost)
    expect(cron.runs.slice(runsBefore).some((x) => x.code === 0), why).toBe(true);
  }, CASE_TIMEOUT_MS);

  // ---- a real reboot: the Docker engine restarted -------------------------------------------------

  const rebootIt = (name: string, fn: () => Promise<void>) => {
    if (!REBOOT) {
      console.warn(`\n!!! SKIPPING "${name}": it restarts the Docker engine (every container on this machine stops). Set LAZYFLOW_E2E_REBOOT=1 (.ci/run does) where nothing else uses the engine.\n`);
      it.skip(name, fn);
      return;
    }
    it(name, async (ctx) => {
      const own = ownDockerd();
      if ('why' in own) {
        if (requireDocker) throw new Error(`LAZYFLOW_E2E_REBOOT=1 but the engine cannot be restarted: ${own.why}. Run: bash test/prepare-machine.sh`);
        console.warn(`!!! SKIPPING "${name}": ${own.why}`);
        ctx.skip();
        return;
      }
      await fn();
    }, CASE_TIMEOUT_MS);
  };

  /** the fault: the machine goes down at the point (cron halts with it), then the engine restarts and the machine boots */
  const rebootAt = (at: { what: string; when: () => boolean | Promise<boolean> }, seen: { engine?: EngineRestart; bootAt?: number }) => ({
    at: {
      what: at.what,
      when: async () => {
        const hit = await at.when();
        if (hit) cron.halt(); // before runFault kills the operation: nothing of the toolkit runs from here until the boot
        return hit;
      },
    },
    afterFault: async () => {
      seen.engine = await restartEngine();
      seen.bootAt = Date.now();
      console.log(`engine restarted in ${(seen.engine.ms / 1000).toFixed(1)} s (dockerd ${seen.engine.before} -> ${seen.engine.after}); apps after the boot: ${describeApps(await appContainerStates(stack))}`);
      cron.boot(RECOVERY_INTERVAL_S);
      return seen.engine.output;
    },
  });

  const expectHealedAfterBoot = (r: FaultResult, seen: { engine?: EngineRestart; bootAt?: number }) => {
    console.log(summarize(r));
    expectNoWriteLost(r, stack.stateDir);
    const why = `${explainResult(r)}\ncron runs: ${JSON.stringify(cron.runs.slice(-6))}`;
    expect(seen.bootAt, why).toBeDefined();
    const afterBootS = r.secondsToFirst2xx! - (seen.bootAt! - r.faultAt) / 1000;
    console.log(`site answered ${afterBootS.toFixed(1)} s after the engine was back (bound ${REBOOT_BOUND_S} s)`);
    expect(afterBootS, why).toBeLessThanOrEqual(REBOOT_BOUND_S);
  };

  rebootIt(`the engine restarted in the middle of a swap, under load: back within ${REBOOT_BOUND_S} s of the boot, no write lost`, async () => {
    const sha = src.commit('v3');
    good = sha;
    builtTags.push(tagOf(sha));
    const [oldApp] = await stack.containers('app');
    const seen: { engine?: EngineRestart; bootAt?: number } = {};
    const r = await runFault({
      stack, label: 'reboot: swap', script: 'rollout.mts', args: args(), interruption: 'reboot', recoveryIntervalS: null, settleTimeoutS: SETTLE_TIMEOUT_S,
      ...rebootAt({ what: 'the swap stopping the old app', when: swapUnderway(oldApp) }, seen),
    });
    expectHealedAfterBoot(r, seen);
  });

  rebootIt(`the engine restarted in the middle of an automatic revert, under load: back on the good release within ${REBOOT_BOUND_S} s of the boot, no write lost`, async () => {
    const goodTag = await version();
    const sha = src.commit('bad: crash at boot', BAD.crashAtBoot);
    builtTags.push(tagOf(sha));
    const revertLine = revertUnderway(stack.stateDir, sha);
    const seen: { engine?: EngineRestart; bootAt?: number } = {};
    const r = await runFault({
      // --skip-contract: the contract gate would refuse the image before the swap; the revert is what is interrupted here
      stack, label: 'reboot: automatic revert', script: 'rollout.mts', args: args('--skip-contract'), interruption: 'reboot', recoveryIntervalS: null, settleTimeoutS: SETTLE_TIMEOUT_S,
      ...rebootAt({ what: 'the automatic revert of the bad release', when: revertLine }, seen),
    });
    expectHealedAfterBoot(r, seen);
    expect(await version(), explainResult(r)).toBe(goodTag);
  });

  rebootIt(`the engine restarted in the middle of a restore (app stopped), under load: back within ${REBOOT_BOUND_S} s of the boot, no write lost`, async () => {
    const { backupId } = await seedAndBackUp(stack, { tasks: 3, prefix: 'reboot-seed', bytes: 20_000, fileName: 'seed.bin' });
    const seen: { engine?: EngineRestart; bootAt?: number } = {};
    const r = await runFault({
      stack, label: 'reboot: restore', script: 'restore.mts', args: ['--from', backupId, '--yes', '--skip-smoke'], interruption: 'reboot', recoveryIntervalS: null, settleTimeoutS: SETTLE_TIMEOUT_S,
      ...rebootAt({
        what: 'the restore past its safety step, with the app stopped',
        when: async () => {
          const phase = restoreJournal(stack.stateDir)?.phase;
          return typeof phase === 'string' && !['staging', 'safety-backup'].includes(phase) && (await stack.containers('app')).length === 0;
        },
      }, seen),
    });
    expectHealedAfterBoot(r, seen);
    expect(restoreJournal(stack.stateDir), explainResult(r)).toBeNull();
    expect(existsSync(join(stack.stateDir, 'ops.lock')) ? readFileSync(join(stack.stateDir, 'ops.lock'), 'utf8') : '', explainResult(r)).not.toMatch(/"operation":"restore"/);
  });
});
