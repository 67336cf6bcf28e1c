// The one app container of the project: which runs, on which image, is it healthy (and waiting until
// it is), and what to print when it is not. Every operation (rollout, rollback, restore, recovery)
// asks here instead of parsing `docker ps` or `docker compose ps` itself.
import type { OpsEnv } from '../config/env.mts';
import type { ObservedApp } from '../recovery/observed.mts';
import { deadline } from '../host/deadline.mts';
import type { Logger } from '../cli/log.mts';
import { formatDuration } from '../cli/log.mts';
import { GateError } from '../cli/errors.mts';
import { redactToken } from '../telegram/bot-api.mts';
import { docker } from './run.mts';
import { APP_SERVICE, composeCtx, composeEnv, parseComposePs, psArgs, type ComposePsEntry } from '../commands/compose.mts';
import { containerLogsArgs, imageIdArgs, inspectArgs, projectContainersArgs } from '../commands/docker.mts';

export interface ContainerInspect {
  Id: string;
  Name: string;
  Image: string;
  Config: { Image: string; Labels?: Record<string, string> };
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    StartedAt: string;
    FinishedAt: string;
    Error?: string;
    OOMKilled?: boolean;
    Health?: { Status: string; FailingStreak?: number; Log?: { Start: string; End: string; ExitCode: number; Output: string }[] };
  };
  RestartCount: number;
}

export interface LiveApp {
  id: string;
  imageRef: string;
  image: string;
  tag: string;
  status: string;
  health?: string;
  startedAt: string;
}

export function splitRef(ref: string): { image: string; tag: string } {
  const i = ref.lastIndexOf(':');
  if (i <= 0 || ref.slice(i).includes('/')) return { image: ref, tag: 'latest' };
  return { image: ref.slice(0, i), tag: ref.slice(i + 1) };
}

export async function appContainers(env: OpsEnv, all = true): Promise<ContainerInspect[]> {
  const ids = (
    await docker(projectContainersArgs(env.project, { service: APP_SERVICE, all, noTrunc: true }))
  ).stdout.split('\n').filter(Boolean);
  if (!ids.length) return [];
  return JSON.parse((await docker(inspectArgs(ids))).stdout) as ContainerInspect[];
}

/** The app container as it is now (running preferred), or null when there is none. */
export async function liveApp(env: OpsEnv): Promise<LiveApp | null> {
  const list = await appContainers(env);
  const c = list.find((x) => x.State.Running) ?? list[0];
  if (!c) return null;
  const { image, tag } = splitRef(c.Config.Image);
  return { id: c.Id, imageRef: c.Config.Image, image, tag, status: c.State.Status, health: c.State.Health?.Status, startedAt: c.State.StartedAt };
}

/** Every app container of the project as recovery sees it (state, health, start time), as plain data. */
export async function observeApps(env: OpsEnv): Promise<ObservedApp[]> {
  return (await appContainers(env)).map((c) => ({
    id: c.Id, tag: splitRef(c.Config.Image).tag, state: c.State.Status as ObservedApp['state'],
    health: c.State.Health?.Status as ObservedApp['health'],
    startedAt: c.State.StartedAt && !c.State.StartedAt.startsWith('0001-') ? new Date(c.State.StartedAt).toISOString() : undefined,
  }));
}

export async function runningContainerCount(env: OpsEnv, service = 'app'): Promise<number> {
  const out = await docker(projectContainersArgs(env.project, { service }));
  return out.stdout.split('\n').filter(Boolean).length;
}

export async function imageExists(ref: string): Promise<boolean> {
  return (await docker(imageIdArgs(ref), { nothrow: true })).exitCode === 0;
}

/** Health log and last log lines of the app container: printed when a gate fails. */
export async function appDiagnostics(env: OpsEnv, containerId?: string): Promise<string> {
  const parts: string[] = [];
  const list = await appContainers(env).catch(() => []);
  const c = (containerId && list.find((x) => x.Id === containerId)) || list.find((x) => x.State.Running) || list[0];
  if (!c) return 'no app container exists';
  const st = c.State;
  const exit = st.Running ? '' : `, exit code ${st.ExitCode}`;
  parts.push(`container ${c.Name.replace(/^\//, '')} (${c.Id.slice(0, 12)}) image ${c.Config.Image}: status ${st.Status}${exit}, restarts ${c.RestartCount}${st.OOMKilled ? ', OOM-killed' : ''}${st.Error ? `, error ${st.Error}` : ''}`);
  if (st.Health) {
    parts.push(`health: ${st.Health.Status} (failing streak ${st.Health.FailingStreak ?? 0})`);
    for (const h of (st.Health.Log ?? []).slice(-3)) parts.push(`  check ${h.End?.slice(11, 23) ?? ''} exit ${h.ExitCode}: ${h.Output.trim().slice(0, 300)}`);
  }
  const logs = await docker(containerLogsArgs(c.Id, 30), { nothrow: true });
  const lines = `${logs.stdout}${logs.stderr}`.trim().split('\n').filter(Boolean).slice(-30);
  parts.push(`last ${lines.length} log lines:`);
  for (const l of lines) parts.push(`  ${redactToken(redactToken(l, env.values.BOT_TOKEN ?? ''), env.values.WEBHOOK_SECRET ?? '')}`);
  return parts.join('\n');
}

export interface WaitHealthyOptions {
  /** how errors name the container (default: the new app container, as in a swap) */
  what?: string;
  /** the step errors belong to (default swap) */
  step?: string;
}

/**
 * Poll docker inspect until the app container is healthy; fail fast on exit, restart or unhealthy.
 * The deadline is monotonic; an image without a healthcheck counts as healthy after 2 s running.
 */
export async function waitHealthy(env: OpsEnv, timeoutMs: number, log?: Logger, o: WaitHealthyOptions = {}): Promise<{ c: ContainerInspect; startToHealthyMs: number }> {
  const what = o.what ?? 'the new app container';
  const step = o.step ?? 'swap';
  const until = deadline(timeoutMs);
  let last = '';
  let running = null as { id: string; since: number } | null;
  for (;;) {
    const list = await appContainers(env);
    const c = list.find((x) => x.State.Running) ?? list[0];
    if (c) {
      const st = c.State;
      const h = st.Health?.Status;
      if (c.RestartCount > 0 || st.Status === 'restarting' || st.Status === 'exited' || st.Status === 'dead') {
        const how = c.RestartCount > 0 ? `exited and was restarted ${c.RestartCount} time(s) by the restart policy` : `${st.Status} with exit code ${st.ExitCode}`;
        throw new GateError(`${what} ${how}: it crashes at boot`, { step, diagnostics: await appDiagnostics(env, c.Id) });
      }
      if (st.Running && running?.id !== c.Id) running = { id: c.Id, since: until.elapsedMs() };
      if (st.Running && (h === 'healthy' || (!st.Health && until.elapsedMs() - running!.since > 2000))) {
        // Docker's StartedAt is a wall-clock timestamp: this figure is a report, never a deadline
        return { c, startToHealthyMs: Date.now() - Date.parse(st.StartedAt) };
      }
      if (h === 'unhealthy') {
        throw new GateError(`${what} is unhealthy`, { step, diagnostics: await appDiagnostics(env, c.Id) });
      }
      const now = `${st.Status}/${h ?? 'no healthcheck'}`;
      if (now !== last) log?.debug(`app container ${c.Id.slice(0, 12)}: ${now}`);
      last = now;
    }
    if (until.passed()) {
      throw new GateError(`${what} did not become healthy within ${formatDuration(timeoutMs)} (last: ${last || 'no container'})`, { step, diagnostics: await appDiagnostics(env, c?.Id) });
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** A container of the project with what smoke reads from it (mounts, log config). */
export interface ProjectContainer {
  Id: string;
  Config: { Image: string; Labels?: Record<string, string> };
  State: { Status: string; StartedAt: string; Health?: { Status: string; Log?: { Output: string; ExitCode: number }[] } };
  HostConfig: { LogConfig?: { Type?: string; Config?: Record<string, string> } };
  Mounts?: { Source: string; Destination: string; Type: string }[];
}

/** `docker compose ps --all` of the project, parsed (both output shapes of Compose v2). */
export async function composePs(env: OpsEnv): Promise<ComposePsEntry[]> {
  const p = await docker(psArgs(composeCtx(env), { all: true }), { env: composeEnv(env.values) });
  return parseComposePs(p.stdout);
}

/** docker inspect of every container of the project (running or not), by service. */
export async function inspectProject(env: OpsEnv): Promise<Record<string, ProjectContainer[]>> {
  const ids = (await docker(projectContainersArgs(env.project, { all: true, noTrunc: true }))).stdout.split('\n').filter(Boolean);
  if (!ids.length) return {};
  const all = JSON.parse((await docker(inspectArgs(ids))).stdout) as ProjectContainer[];
  const by: Record<string, ProjectContainer[]> = {};
  for (const c of all) {
    const s = c.Config.Labels?.['com.docker.compose.service'] ?? '?';
    (by[s] ??= []).push(c);
  }
  return by;
}
