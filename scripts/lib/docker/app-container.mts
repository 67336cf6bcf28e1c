// The one app container of the project: which runs, on which image, is it healthy, and what to print
// when it is not. Every operation asks here instead of parsing `docker ps` itself.
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { formatDuration } from '../cli/log.mts';
import { GateError } from '../cli/errors.mts';
import { redactToken } from '../telegram/bot-api.mts';
import { docker } from './run.mts';

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
    await docker(['ps', ...(all ? ['-a'] : []), '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${env.project}`, '--filter', 'label=com.docker.compose.service=app'])
  ).stdout.split('\n').filter(Boolean);
  if (!ids.length) return [];
  return JSON.parse((await docker(['inspect', ...ids])).stdout) as ContainerInspect[];
}

/** The app container as it is now (running preferred), or null when there is none. */
export async function liveApp(env: OpsEnv): Promise<LiveApp | null> {
  const list = await appContainers(env);
  const c = list.find((x) => x.State.Running) ?? list[0];
  if (!c) return null;
  const { image, tag } = splitRef(c.Config.Image);
  return { id: c.Id, imageRef: c.Config.Image, image, tag, status: c.State.Status, health: c.State.Health?.Status, startedAt: c.State.StartedAt };
}

export async function runningContainerCount(env: OpsEnv, service = 'app'): Promise<number> {
  const out = await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${env.project}`, '--filter', `label=com.docker.compose.service=${service}`]);
  return out.stdout.split('\n').filter(Boolean).length;
}

export async function imageExists(ref: string): Promise<boolean> {
  return (await docker(['image', 'inspect', '--format', '{{.Id}}', ref], { nothrow: true })).exitCode === 0;
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
  const logs = await docker(['logs', '--tail', '30', c.Id], { nothrow: true });
  const lines = `${logs.stdout}${logs.stderr}`.trim().split('\n').filter(Boolean).slice(-30);
  parts.push(`last ${lines.length} log lines:`);
  for (const l of lines) parts.push(`  ${redactToken(redactToken(l, env.values.BOT_TOKEN ?? ''), env.values.WEBHOOK_SECRET ?? '')}`);
  return parts.join('\n');
}

/** Poll docker inspect until the container is healthy; fail fast on exit, restart or unhealthy. */
export async function waitHealthy(env: OpsEnv, timeoutMs: number, log?: Logger): Promise<{ c: ContainerInspect; startToHealthyMs: number }> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    const list = await appContainers(env);
    const c = list.find((x) => x.State.Running) ?? list[0];
    if (c) {
      const st = c.State;
      const h = st.Health?.Status;
      if (c.RestartCount > 0 || st.Status === 'restarting' || st.Status === 'exited' || st.Status === 'dead') {
        const how = c.RestartCount > 0 ? `exited and was restarted ${c.RestartCount} time(s) by the restart policy` : `${st.Status} with exit code ${st.ExitCode}`;
        throw new GateError(`the new app container ${how}: it crashes at boot`, { step: 'swap', diagnostics: await appDiagnostics(env, c.Id) });
      }
      if (st.Running && (h === 'healthy' || (!st.Health && Date.now() - Date.parse(st.StartedAt) > 2000))) {
        return { c, startToHealthyMs: Date.now() - Date.parse(st.StartedAt) };
      }
      if (h === 'unhealthy') {
        throw new GateError('the new app container is unhealthy', { step: 'swap', diagnostics: await appDiagnostics(env, c.Id) });
      }
      const now = `${st.Status}/${h ?? 'no healthcheck'}`;
      if (now !== last) log?.debug(`app container ${c.Id.slice(0, 12)}: ${now}`);
      last = now;
    }
    if (performance.now() > deadline) {
      throw new GateError(`the new app container did not become healthy within ${formatDuration(timeoutMs)} (last: ${last || 'no container'})`, { step: 'swap', diagnostics: await appDiagnostics(env, c?.Id) });
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}
