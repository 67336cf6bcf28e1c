// Plain docker commands and the app's one stop and one start, as data: each argument one element.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  builderPruneArgs, containerLogsArgs, imageContentArgs, imageIdArgs, imageRmArgs, imageTagsArgs, inspectArgs, networkRmArgs,
  projectContainersArgs, removeContainersArgs, stopContainersArgs, tagArgs,
} from '../../scripts/lib/commands/docker.mts';
import { appStopArgs, appUpArgs, proxyUpArgs, swapCommands } from '../../scripts/lib/commands/compose.mts';
import { docker, readDockerRecord, recordDocker, RECORD_ENV } from '../../scripts/lib/docker/run.mts';
import type { OpsEnv } from '../../scripts/lib/config/env.mts';
import { APP_GID, APP_UID } from '../../scripts/lib/host/fsutil.mts';

const ctx = { projectDir: '/srv/lazyflow deploy', envFile: '/srv/lazyflow deploy/.env.prod', project: 'lazyflow' };
const base = ['compose', '--project-directory', '/srv/lazyflow deploy', '--env-file', '/srv/lazyflow deploy/.env.prod', '-p', 'lazyflow'];

describe('docker commands', () => {
  it("finds the project's containers by Compose's labels, never by name", () => {
    expect(projectContainersArgs('lazyflow', { service: 'app', all: true, noTrunc: true })).toEqual([
      'ps', '-a', '-q', '--no-trunc', '--filter', 'label=com.docker.compose.project=lazyflow', '--filter', 'label=com.docker.compose.service=app',
    ]);
    expect(projectContainersArgs('lazyflow', { service: 'caddy' })).toEqual(['ps', '-q', '--filter', 'label=com.docker.compose.project=lazyflow', '--filter', 'label=com.docker.compose.service=caddy']);
    expect(projectContainersArgs('lazyflow', { all: true, noTrunc: true })).toEqual(['ps', '-a', '-q', '--no-trunc', '--filter', 'label=com.docker.compose.project=lazyflow']);
  });

  it('images, containers, networks', () => {
    expect(inspectArgs(['a', 'b'])).toEqual(['inspect', 'a', 'b']);
    expect(imageIdArgs('lazyflow-app:abc')).toEqual(['image', 'inspect', '--format', '{{.Id}}', 'lazyflow-app:abc']);
    expect(imageContentArgs('lazyflow-app:abc')).toEqual(['image', 'inspect', '--format', '{"Id":{{json .Id}},"Layers":{{json .RootFS.Layers}},"Config":{{json .Config}}}', 'lazyflow-app:abc']);
    expect(imageTagsArgs('lazyflow-app')).toEqual(['images', 'lazyflow-app', '--format', '{{.Tag}}']);
    expect(imageRmArgs('lazyflow-app:abc')).toEqual(['image', 'rm', 'lazyflow-app:abc']);
    expect(tagArgs('lazyflow-caddy:abc', 'lazyflow-caddy:local')).toEqual(['tag', 'lazyflow-caddy:abc', 'lazyflow-caddy:local']);
    expect(containerLogsArgs('c1', 30)).toEqual(['logs', '--tail', '30', 'c1']);
    expect(stopContainersArgs(['c1', 'c2'])).toEqual(['stop', 'c1', 'c2']);
    expect(stopContainersArgs(['c1'], { timeoutS: 15 })).toEqual(['stop', '-t', '15', 'c1']);
    expect(removeContainersArgs(['c1'])).toEqual(['rm', '-f', 'c1']);
    expect(removeContainersArgs(['c1'], { volumes: true })).toEqual(['rm', '-f', '-v', 'c1']);
    expect(networkRmArgs('n1')).toEqual(['network', 'rm', 'n1']);
  });

  it('an empty id list is a bug, not `docker stop` of nothing', () => {
    expect(() => inspectArgs([])).toThrow();
    expect(() => stopContainersArgs([])).toThrow();
    expect(() => removeContainersArgs([])).toThrow();
  });

  it('the build cache is bounded by age (every unused entry, not only dangling ones), without a prompt', () => {
    expect(builderPruneArgs()).toEqual(['builder', 'prune', '--force', '--all', '--filter', 'until=168h']);
    expect(builderPruneArgs({ untilH: 24 })).toEqual(['builder', 'prune', '--force', '--all', '--filter', 'until=24h']);
  });
});

describe("the app's one stop and one start", () => {
  it('stop: graceful, the compose file decides the grace unless --stop-timeout; start: no deps, no build, no pull', () => {
    expect(appStopArgs(ctx)).toEqual([...base, 'stop', 'app']);
    expect(appStopArgs(ctx, { timeoutS: 20 })).toEqual([...base, 'stop', '-t', '20', 'app']);
    expect(appUpArgs(ctx)).toEqual([...base, 'up', '-d', '--no-deps', '--no-build', '--pull', 'never', 'app']);
    expect(proxyUpArgs(ctx)).toEqual([...base, 'up', '-d', '--no-deps', '--no-build', '--pull', 'never', 'caddy']);
  });

  it("the swap's commands are the same two", () => {
    const env = { ...ctx, composeFiles: [] } as unknown as OpsEnv;
    const s = swapCommands(env, { stopTimeoutS: 5 });
    expect(s.stop).toEqual(appStopArgs(ctx, { timeoutS: 5 }));
    expect(s.up).toEqual(appUpArgs(ctx));
    expect(s.upAll).toEqual([...base, 'up', '-d', '--no-build', '--pull', 'never', '--wait']);
  });

  it('a polling bot: the first deploy starts the app alone (no Caddy, no published port)', () => {
    const env = { ...ctx, composeFiles: [], values: { BOT_SHAPE: 'polling' } } as unknown as OpsEnv;
    expect(swapCommands(env).upAll).toEqual([...base, 'up', '-d', '--no-build', '--pull', 'never', '--wait', 'app']);
    expect(swapCommands(env).up).toEqual(appUpArgs(ctx));
  });
});

describe('the runner records what it runs', () => {
  it('in-process (recordDocker) and across processes (LAZYFLOW_RECORD_DOCKER), argv exactly as run', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lzf-rec-'));
    const file = path.join(dir, 'docker.jsonl');
    const before = process.env[RECORD_ENV];
    process.env[RECORD_ENV] = file;
    const rec = recordDocker();
    try {
      await docker(['--version'], { nothrow: true });
      await docker(['image', 'inspect', '--format', '{{.Id}}', 'no such image'], { nothrow: true });
    } finally {
      rec.stop();
      if (before === undefined) delete process.env[RECORD_ENV];
      else process.env[RECORD_ENV] = before;
    }
    await docker(['--version'], { nothrow: true }); // after stop(): not recorded
    const want = [['--version'], ['image', 'inspect', '--format', '{{.Id}}', 'no such image']];
    expect(rec.calls.map((c) => c.argv)).toEqual(want);
    expect(readDockerRecord(file).map((c) => c.argv)).toEqual(want);
    expect(readDockerRecord(file).every((c) => c.pid === process.pid)).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("the restore drill's commands", () => {
  it('a hardened throwaway container on an internal network, labelled with the project and the pid', async () => {
    const d = await import('../../scripts/lib/commands/drill.mts');
    expect(d.drillNetworkCreateArgs('n1', 'lazyflow', 42)).toEqual(['network', 'create', '--internal', '--label', 'lazyflow.drill=lazyflow', '--label', 'lazyflow.drill.pid=42', 'n1']);
    expect(d.drillRunArgs({ name: 'c1', project: 'lazyflow', pid: 42, network: 'n1', envFile: '/s/.drill-x/app.env', dataDir: '/s/.drill-x/data', uploadsDir: '/s/.drill-x/uploads', image: 'sha256:abc' })).toEqual([
      'run', '-d', '--name', 'c1', '--label', 'lazyflow.drill=lazyflow', '--label', 'lazyflow.drill.pid=42', '--network', 'n1',
      '--read-only', '--tmpfs', '/tmp:size=64m,mode=1777', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
      '--user', `${APP_UID}:${APP_GID}`, '--memory', '512m', '--pids-limit', '256', '--add-host', 'api.telegram.org:127.0.0.1', '--env-file', '/s/.drill-x/app.env',
      '-v', '/s/.drill-x/data:/app/data', '-v', '/s/.drill-x/uploads:/app/uploads', 'sha256:abc',
    ]);
    expect(d.drillContainersArgs('lazyflow')).toEqual(['ps', '-a', '--filter', 'label=lazyflow.drill=lazyflow', '--format', '{{.ID}}\t{{.Label "lazyflow.drill.pid"}}']);
    expect(d.drillNetworksArgs('lazyflow')).toEqual(['network', 'ls', '--filter', 'label=lazyflow.drill=lazyflow', '--format', '{{.ID}}\t{{.Label "lazyflow.drill.pid"}}']);
    expect(d.healthProbeArgs('c1').slice(0, 4)).toEqual(['exec', 'c1', 'bun', '-e']);
    expect(d.containerByNameArgs('c1')).toEqual(['ps', '-a', '-q', '--filter', 'name=^c1$']);
    expect(d.networkByNameArgs('n1')).toEqual(['network', 'ls', '-q', '--filter', 'name=^n1$']);
  });
});
