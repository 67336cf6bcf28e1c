// kill -9 of a restore at real, observable points (the phase its journal records): the script and
// the detached worker it runs the stop..healthy part in (a reboot or power loss), then the next
// run: the app comes back on either the old state or the restored one, never a mix. Plus the
// restore drill, its teardown and the cleanup after a drill that was killed.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describeDocker } from '../support/docker.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { run } from '../support/run.ts';
import { appContainer, createTask, readDb, download, journalPhase, listTasks, manifestOf, script, sha256, spawnScript, until, upload, waitHealthy, seedAndBackUp } from '../support/backup.ts';

describeDocker('restore.mts crash safety and drill', () => {
  let stack: Stack;
  let backupId = '';
  let inBackup: { id: string; content: Buffer };

  beforeAll(async () => {
    stack = await startStack({ name: 'restore-crash' });
    ({ backupId, upload: inBackup } = await seedAndBackUp(stack, { tasks: 3, prefix: 'bk', bytes: 40000, fileName: 'in-backup.bin' }));
  });

  afterAll(async () => {
    await stack?.down();
  });

  /** the live state as the app serves it: old (has the marker task/upload) or restored (exactly the backup) */
  async function servedState(marker: string, markerUpload: string): Promise<'old' | 'restored' | 'mixed'> {
    await waitHealthy(stack);
    const titles = (await listTasks(stack)).map((t) => t.title);
    const hasMarker = titles.includes(marker);
    const markerFile = (await download(stack, markerUpload)).status === 200;
    const backupFile = await download(stack, inBackup.id);
    expect(backupFile.status).toBe(200);
    expect(backupFile.body.equals(inBackup.content)).toBe(true);
    for (let i = 0; i < 3; i++) expect(titles).toContain(`bk-${i}`);
    // uploads on disk are exactly the set the database names (old: + marker, restored: the backup's)
    const m = manifestOf(stack.stateDir, backupId);
    const files = readdirSync(join(stack.stateDir, 'uploads')).filter((n) => !n.startsWith('.'));
    if (hasMarker && markerFile) return 'old';
    if (!hasMarker && !markerFile && files.length === m.uploads.entries.length) return 'restored';
    return 'mixed';
  }

  function leftovers() {
    return readdirSync(stack.stateDir).filter((n) => n.startsWith('.restore-') || n === 'restore-journal.json');
  }

  function keptDirs(): string[] {
    const root = join(stack.stateDir, 'kept');
    return existsSync(root) ? readdirSync(root).sort() : [];
  }

  /** SIGKILL the session of the process the ops lock names, unless it is `not` (the script itself) */
  function killLockHolder(not: number) {
    let holder: number | undefined;
    try {
      holder = (JSON.parse(readFileSync(join(stack.stateDir, 'ops.lock'), 'utf8')) as { pid?: number }).pid;
    } catch {
      return;
    }
    if (!holder || holder === not) return;
    try {
      process.kill(-holder, 'SIGKILL'); // the worker leads its own session; its docker compose child dies with it
    } catch {
      /* already gone */
    }
  }

  /** start a restore and SIGKILL it (and its detached worker) as soon as its journal reaches one of `phases` */
  async function killAt(phases: string[], from = backupId): Promise<string> {
    const p = await spawnScript(stack, 'restore.mts', ['--from', from, '--yes', '--skip-smoke']);
    let seen: string | null = null;
    await until(`restore phase ${phases.join('|')}`, () => {
      seen = journalPhase(stack.stateDir);
      return seen !== null && phases.includes(seen);
    }, 90_000, 2);
    // everything of the restore dies, as at a reboot: the script, then the detached worker it handed
    // the lock to for the stop..healthy part (once the script is dead the lock cannot change hands)
    p.child.kill('SIGKILL');
    const r = await p.done;
    expect(r.signal).toBe('SIGKILL');
    killLockHolder(p.child.pid!);
    // the phase it died in is what the journal holds now: it may have moved on between our read and the kill
    return journalPhase(stack.stateDir) ?? seen!;
  }

  async function mark(tag: string) {
    const title = `old-${tag}`;
    await createTask(stack, title);
    const up = await upload(stack, randomBytes(10_000), `${tag}.bin`);
    return { title, upload: up.id };
  }

  for (const phases of [['staging'], ['stopping'], ['starting']]) {
    it(`killed at ${phases.join('/')}: running restore again brings the app back on the restored state`, async () => {
      await waitHealthy(stack);
      const m = await mark(phases[0]);
      const killed = await killAt(phases);
      // right after the kill: the journal says where it stopped
      expect(journalPhase(stack.stateDir)).toBe(killed);
      const again = await script(stack, 'restore.mts', ['--from', backupId, '--yes', '--skip-smoke']);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stderr + again.stdout).toMatch(new RegExp(`found an interrupted restore of ${backupId} \\(phase ${killed}`));
      expect(await servedState(m.title, m.upload)).toBe('restored');
      expect(leftovers()).toEqual([]);
    });
  }

  it('killed -9 after the live state was moved aside, re-run with --from latest: ends on the backup first chosen, the moved-aside state kept', async () => {
    await waitHealthy(stack);
    const m = await mark('resolve-once');
    // a newer backup exists: "latest" must not be resolved again to it (nor to anything else)
    const newer = await script(stack, 'backup.mts', ['--json', '--quiet', '--reason', 'manual']);
    expect(newer.code, newer.stderr).toBe(0);
    const newerId = JSON.parse(newer.stdout).backup.id;
    expect(newerId).not.toBe(backupId);
    const keptBefore = keptDirs();
    const killed = await killAt(['swapping', 'swapped'], backupId);
    const j = JSON.parse(readFileSync(join(stack.stateDir, 'restore-journal.json'), 'utf8'));
    expect(j.backupId).toBe(backupId);
    const again = await script(stack, 'restore.mts', ['--from', 'latest', '--yes', '--skip-smoke']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stderr + again.stdout).toMatch(new RegExp(`found an interrupted restore of ${backupId} \\(phase ${killed}`));
    expect(again.stderr + again.stdout).not.toMatch(new RegExp(`restore backup ${newerId}`));
    // the live state is the backup chosen first (the marker, in the newer backup, is not live)
    expect(await servedState(m.title, m.upload)).toBe('restored');
    // the state that was live before the killed restore is kept aside whole, marker included
    const added = keptDirs().filter((n) => !keptBefore.includes(n));
    expect(added).toHaveLength(1);
    const keptTitles = readDb(join(stack.stateDir, 'kept', added[0], 'data', 'lazyflow.db'), (d) => d.prepare('SELECT title FROM tasks').pluck().all());
    expect(keptTitles).toContain(m.title);
    expect(readdirSync(join(stack.stateDir, 'kept', added[0], 'uploads')).length).toBeGreaterThan(manifestOf(stack.stateDir, backupId).uploads.entries.length);
    expect(leftovers()).toEqual([]);
  });

  it('killed before the swap, --recover puts the old state back and starts the app', async () => {
    await waitHealthy(stack);
    const m = await mark('recover-old');
    const killed = await killAt(['stopping']);
    expect(killed).toBe('stopping');
    const r = await script(stack, 'restore.mts', ['--recover']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/rolled back: the live data was never touched/);
    expect(await servedState(m.title, m.upload)).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  it('killed after the swap, --recover completes the restore', async () => {
    await waitHealthy(stack);
    const m = await mark('recover-new');
    const killed = await killAt(['swapped', 'starting']);
    const r = await script(stack, 'restore.mts', ['--recover']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`found an interrupted restore of ${backupId} \\(phase ${killed}`));
    expect(r.stdout).toMatch(new RegExp(`interrupted restore completed: the live state is backup ${backupId}`));
    expect(await servedState(m.title, m.upload)).toBe('restored');
    expect(leftovers()).toEqual([]);
  });

  it('killed between the two renames of the swap (data new, uploads old): --recover completes it', async () => {
    await waitHealthy(stack);
    const m = await mark('mid-swap');
    const killed = await killAt(['stopping']);
    expect(killed).toBe('stopping');
    // let the stop finish, then leave the disk exactly as a kill between the renames would
    await stack.mustCompose('stop', 'app');
    const j = JSON.parse(readFileSync(join(stack.stateDir, 'restore-journal.json'), 'utf8'));
    mkdirSync(j.kept, { recursive: true });
    renameSync(join(stack.stateDir, 'data'), join(j.kept, 'data'));
    renameSync(join(j.staging, 'data'), join(stack.stateDir, 'data'));
    writeFileSync(join(stack.stateDir, 'restore-journal.json'), JSON.stringify({ ...j, phase: 'swapping' }));
    // a backup now would copy a half-swapped state: refused
    const b = await script(stack, 'backup.mts', []);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/interrupted restore is pending/);
    const r = await script(stack, 'restore.mts', ['--recover']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await servedState(m.title, m.upload)).toBe('restored');
    expect(leftovers()).toEqual([]);
  });

  it('the drill passes, leaves production untouched and leaves no container, network or scratch dir', async () => {
    await waitHealthy(stack);
    const before = { app: await appContainer(stack), tasks: (await listTasks(stack)).map((t) => t.title) };
    const r = await script(stack, 'restore.mts', ['--drill', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.failed).toBe(false);
    expect(Object.fromEntries(out.checks.map((c: { name: string; status: string }) => [c.name, c.status]))).toEqual({
      'backup verifies': 'pass',
      'app boots and is healthy': 'pass',
      isolated: 'pass',
      'integrity_check after boot': 'pass',
      'row counts': 'pass',
      teardown: 'pass',
    });
    const ps = await run('docker', ['ps', '-a', '-q', '--filter', `label=lazyflow.drill=${stack.project}`]);
    expect(ps.stdout.trim()).toBe('');
    const nets = await run('docker', ['network', 'ls', '-q', '--filter', `label=lazyflow.drill=${stack.project}`]);
    expect(nets.stdout.trim()).toBe('');
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.drill-'))).toEqual([]);
    expect({ app: await appContainer(stack), tasks: (await listTasks(stack)).map((t) => t.title) }).toEqual(before);
    // the drill never talked to the Bot API
    expect(existsSync(join(stack.stateDir, 'data', 'lazyflow.db'))).toBe(true);
  });

  it('a running drill holds the lock against retention; killed -9, its leftovers are removed by the next drill', async () => {
    const p = await spawnScript(stack, 'restore.mts', ['--drill']);
    await until('the drill container', async () => {
      const ps = await run('docker', ['ps', '-a', '-q', '--filter', `label=lazyflow.drill=${stack.project}`]);
      return ps.stdout.trim() !== '';
    }, 90_000, 100);
    // the drill holds the ops lock: retention cannot delete the backup under it
    const prune = await script(stack, 'backup.mts', ['--forget', '--keep-last', '1']);
    expect(prune.code, prune.stdout + prune.stderr).toBe(1);
    expect(prune.stderr).toMatch(/another operation holds the lock: restore --drill/);
    p.child.kill('SIGKILL');
    await p.done;
    expect((await run('docker', ['ps', '-a', '-q', '--filter', `label=lazyflow.drill=${stack.project}`])).stdout.trim()).not.toBe('');
    const r = await script(stack, 'restore.mts', ['--drill']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/removed \d+ leftover\(s\) of an earlier drill/);
    expect((await run('docker', ['ps', '-a', '-q', '--filter', `label=lazyflow.drill=${stack.project}`])).stdout.trim()).toBe('');
    expect((await run('docker', ['network', 'ls', '-q', '--filter', `label=lazyflow.drill=${stack.project}`])).stdout.trim()).toBe('');
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.drill-'))).toEqual([]);
  });
});
