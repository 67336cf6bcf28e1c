// The fault matrix, run by bench/faults/run.mts through vitest (see vitest.config.ts there): one
// stack, every interruption at every phase, in sequence. After a case that did not settle (the site
// still down, an operation unfinished), the stack is repaired the way an operator would (restore
// --recover, then rollout of the good commit) so the next case starts from a serving site.
import { afterAll, beforeAll, it } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, e2eImages, type Stack } from '../../test/support/stack.ts';
import { repoRoot, runScript } from '../../test/support/run.ts';
import { seedAndBackUp } from '../../test/support/backup.ts';
import { BAD, ReleaseSource, removeImages } from '../../test/support/release-source.mts';
import {
  INTERRUPTIONS, SWAP_BOUND_S, appContainerStates, deliver, ensureServing, explainResult, recoverScriptExists, releases, restoreJournal, runFault,
  settledWhy, startOperation, summarize, swapUnderway, waitForPoint, type FaultCase, type FaultResult, type Interruption,
} from '../../test/support/faults.ts';

const PHASES = ['swap', 'health', 'revert', 'with-db', 'restore', 'recovery'] as const;
type Phase = (typeof PHASES)[number];
const PHASE_NAMES: Record<Phase, string> = {
  swap: 'swap', health: 'health gate', revert: 'automatic revert', 'with-db': 'rollback --with-db', restore: 'restore', recovery: 'recovery',
};
const intervalS = Number(process.env.FAULTS_INTERVAL_S ?? 10);
const settleS = Number(process.env.FAULTS_SETTLE_S ?? 90);
const phases = (process.env.FAULTS_PHASES?.split(',') ?? PHASES) as Phase[];
const interruptions = (process.env.FAULTS_INTERRUPTIONS?.split(',') ?? INTERRUPTIONS) as Interruption[];
const out = process.env.FAULTS_OUT ?? '/tmp/benchmarks-faults.md';

let stack: Stack;
let src: ReleaseSource;
let good = '';
let backupId = '';
const tags: string[] = [];

beforeAll(async () => {
  stack = await startStack({ name: 'bench-faults' });
  src = ReleaseSource.create(repoRoot, 'bench-faults');
  good = src.head;
  ({ backupId } = await seedAndBackUp(stack, { tasks: 3, prefix: 'seed', bytes: 20_000, fileName: 'seed.bin' }));
});
afterAll(async () => {
  removeImages(e2eImages().appImage, [...tags, ...(stack ? releases(stack.stateDir).map((r) => r.appTag ?? '') : [])], [e2eImages().appTag]);
  await stack?.down();
  src?.cleanup();
});

const rolloutArgs = () => ['--source', src.dir, '--ca', stack.caPem, '--no-notify', '--skip-smoke'];
const newCommit = (label: string, patch?: (dir: string) => void) => {
  src.checkout(good);
  const sha = src.commit(label, patch);
  tags.push(sha.slice(0, 12));
  if (!patch) good = sha;
  return sha;
};

/** Prepare the stack for one case and say where to interrupt; null (with why) when it cannot run. */
async function caseFor(phase: Phase, interruption: Interruption): Promise<FaultCase | string> {
  const common = { stack, interruption, recoveryIntervalS: intervalS, settleTimeoutS: settleS, label: PHASE_NAMES[phase] };
  switch (phase) {
    case 'swap': {
      newCommit(`swap ${interruption}`);
      const [old] = await stack.containers('app');
      return { ...common, script: 'rollout.mts', args: rolloutArgs(), at: { what: 'the swap stopping the old app', when: swapUnderway(old) } };
    }
    case 'health': {
      const tag = newCommit(`health ${interruption}`).slice(0, 12);
      return {
        ...common, script: 'rollout.mts', args: rolloutArgs(),
        at: { what: 'the new app running, not yet healthy', when: async () => (await appContainerStates(stack)).some((c) => c.image.endsWith(`:${tag}`) && c.status === 'running' && c.health === 'starting') },
      };
    }
    case 'revert': {
      const sha = newCommit(`bad ${interruption}`, BAD.crashAtBoot);
      return {
        // --skip-contract: the gate would refuse the image before the swap; the revert is what is interrupted
        ...common, script: 'rollout.mts', args: [...rolloutArgs(), '--skip-contract'],
        at: {
          what: 'the automatic revert', when: () => {
            const rs = releases(stack.stateDir);
            const bad = rs.find((x) => x.gitSha === sha);
            return Boolean(bad && rs.some((x) => x.previousRelease === bad.id && x.result === 'in-progress'));
          },
        },
      };
    }
    case 'with-db': {
      newCommit(`with-db ${interruption}`);
      const up = await runScript('rollout.mts', ['--config', stack.envFile, ...rolloutArgs()], { timeoutMs: 240_000 });
      if (up.code !== 0) return `the rollout before it failed (exit ${up.code}): ${up.stderr.slice(-300)}`;
      const known = new Set(releases(stack.stateDir).map((x) => x.id));
      return {
        ...common, script: 'rollback.mts', args: ['--ca', stack.caPem, '--no-notify', '--skip-smoke', '--with-db', '--yes'],
        at: {
          what: 'the app stopped for the data swap',
          when: async () => releases(stack.stateDir).some((x) => !known.has(x.id) && x.kind === 'rollback' && x.result === 'in-progress') && (await stack.containers('app')).length === 0,
        },
      };
    }
    case 'restore':
      return {
        ...common, script: 'restore.mts', args: ['--from', backupId, '--yes', '--skip-smoke'],
        at: {
          what: 'the restore past its safety step, the app stopped',
          when: async () => !['staging', 'safety-backup', undefined].includes(restoreJournal(stack.stateDir)?.phase as string | undefined) && (await stack.containers('app')).length === 0,
        },
      };
    case 'recovery': {
      if (!recoverScriptExists()) return 'scripts/recover.mts does not exist (the engine has not landed)';
      newCommit(`recovery ${interruption}`);
      const [old] = await stack.containers('app');
      const killed = startOperation(stack, 'rollout.mts', rolloutArgs(), 'rollout to leave unfinished');
      await waitForPoint(killed, 'the swap stopping the old app', swapUnderway(old));
      // the swap runs in a detached worker that outlives the terminal's group (and would finish the
      // release unaided): kill it too, as a reboot or the OOM killer would, so recovery has work to do
      const lock = JSON.parse(readFileSync(join(stack.stateDir, 'ops.lock'), 'utf8')) as { pid: number };
      deliver(killed, 'kill9-group');
      try {
        process.kill(-lock.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await killed.exited;
      const journal = join(stack.stateDir, 'releases.jsonl');
      const before = readFileSync(journal, 'utf8').length;
      return { ...common, script: 'recover.mts', args: [], at: { what: 'recovery writing its first journal line', when: () => readFileSync(journal, 'utf8').length > before } };
    }
  }
}


const fmt = (x: number | null) => (x === null ? 'never' : x.toFixed(1));

it('fault matrix', async () => {
  const rows: string[] = [];
  const notes: string[] = [];
  const started = Date.now();
  matrix: for (const phase of phases) {
    for (const interruption of interruptions) {
      let row: string;
      try {
        const c = await caseFor(phase, interruption);
        if (typeof c === 'string') {
          row = `| ${PHASE_NAMES[phase]} | ${interruption} | n/a | n/a | n/a | n/a | n/a | n/a | ${c} |`;
        } else {
          const r: FaultResult = await runFault(c);
          console.log(summarize(r));
          // the data promises hold for every interruption: no acknowledged write or queued update lost, one app container
          const dataKept = r.data.lostWrites.length === 0 && r.data.lostUpdates.length === 0 && r.data.duplicateUpdates.length === 0 && r.maxAppContainers <= 1;
          if (r.secondsToSettled === null || !dataKept) console.log(explainResult(r));
          const timely = interruption === 'sighup' || interruption === 'sigint'
            ? r.failedRequests === 0 && r.secondsToSettled !== null
            : r.secondsToFirst2xx !== null && r.secondsToFirst2xx <= intervalS + SWAP_BOUND_S && r.secondsToSettled !== null;
          const goal = timely && dataKept ? 'met' : `MISSED${dataKept ? '' : ' (data)'}`;
          const note = r.secondsToSettled === null ? `not settled: ${r.unsettledWhy}; 2 s after the fault: ${r.appsAfterFault}` : `2 s after the fault: ${r.appsAfterFault}`;
          row = `| ${PHASE_NAMES[phase]} | ${interruption} | ${fmt(r.secondsToFirst2xx)} | ${fmt(r.secondsToSettled)} | ${r.failedRequests}/${r.requests} | ${r.maxAppContainers} | ${r.data.lostWrites.length}/${r.data.acked} | ${r.data.lostUpdates.length}/${r.data.duplicateUpdates.length} of ${r.data.updates} | ${goal}; ${note} |`;
        }
      } catch (e) {
        row = `| ${PHASE_NAMES[phase]} | ${interruption} | error | | | | | | ${(e as Error).message.split('\n')[0].slice(0, 160)} |`;
      }
      rows.push(row);
      console.log(row);
      try {
        src.checkout(good);
        const why = await ensureServing(stack, rolloutArgs());
        if (why) notes.push(`after ${PHASE_NAMES[phase]} / ${interruption}: repaired by hand (${why})`);
      } catch (e) {
        notes.push(`after ${PHASE_NAMES[phase]} / ${interruption}: ${(e as Error).message.split('\n')[0]}; matrix stopped`);
        break matrix;
      }
    }
  }
  const table = [
    `Fault matrix: recovery timer every ${intervalS} s; kill -9 and reboot goal: 2xx within ${intervalS + SWAP_BOUND_S} s (interval + ${SWAP_BOUND_S} s swap bound); SIGHUP/SIGINT goal: 0 failed. ` +
      `Run ${new Date().toISOString()}, ${((Date.now() - started) / 60000).toFixed(1)} min, scripts/recover.mts ${recoverScriptExists() ? 'present' : 'ABSENT'}.`,
    '',
    '| phase | interruption | s to 2xx | s settled | failed requests | max app containers | lost writes | lost/duplicate updates | goal; notes |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
    '',
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
  writeFileSync(out, table + '\n');
  console.log(`\n${table}\n\nwritten to ${out}`);
});
