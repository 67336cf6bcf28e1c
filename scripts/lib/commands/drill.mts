// The restore drill's docker commands as data (restore/drill.mts runs them): a throwaway container of
// the app image on an internal network, labelled with the project and the drill's pid so that a later
// drill removes what a killed one left. Hardened like production; the env file holds placeholders.
import { APP_GID, APP_UID } from '../host/fsutil.mts';

export const DRILL_LABEL = 'lazyflow.drill';

/** `<id>\t<pid label>` of the drill containers (or networks) of one project */
export function drillContainersArgs(project: string): string[] {
  return ['ps', '-a', '--filter', `label=${DRILL_LABEL}=${project}`, '--format', `{{.ID}}\t{{.Label "${DRILL_LABEL}.pid"}}`];
}
export function drillNetworksArgs(project: string): string[] {
  return ['network', 'ls', '--filter', `label=${DRILL_LABEL}=${project}`, '--format', `{{.ID}}\t{{.Label "${DRILL_LABEL}.pid"}}`];
}

/** the labels a drill's containers and network carry (a later drill removes what a killed one left by them) */
export const drillLabels = (project: string, pid: number) => ['--label', `${DRILL_LABEL}=${project}`, '--label', `${DRILL_LABEL}.pid=${pid}`];
const labels = drillLabels;

export function drillNetworkCreateArgs(network: string, project: string, pid: number): string[] {
  return ['network', 'create', '--internal', ...labels(project, pid), network];
}

export interface DrillRunSpec {
  name: string;
  project: string;
  pid: number;
  network: string;
  envFile: string;
  dataDir: string;
  uploadsDir: string;
  image: string;
}

export function drillRunArgs(s: DrillRunSpec): string[] {
  return [
    'run', '-d', '--name', s.name,
    ...labels(s.project, s.pid),
    '--network', s.network,
    '--read-only', '--tmpfs', '/tmp:size=64m,mode=1777', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
    '--user', `${APP_UID}:${APP_GID}`, '--memory', '512m', '--pids-limit', '256',
    '--add-host', 'api.telegram.org:127.0.0.1', '--env-file', s.envFile,
    '-v', `${s.dataDir}:/app/data`, '-v', `${s.uploadsDir}:/app/uploads`,
    s.image,
  ];
}

/** "<status> <health>" of a container */
export function stateArgs(name: string): string[] {
  return ['inspect', '--format', '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}', name];
}

/** GET /health from inside the container (no published port): exit 0 on 200, or print status and body */
export function healthProbeArgs(name: string, o: { print?: boolean } = {}): string[] {
  const js = o.print
    ? 'const r = await fetch("http://127.0.0.1:3000/health"); console.log(r.status, await r.text())'
    : 'const r = await fetch("http://127.0.0.1:3000/health"); process.exit(r.status === 200 ? 0 : 1)';
  return ['exec', name, 'bun', '-e', js];
}

/** published ports and the networks a container is on */
export function portsAndNetworksArgs(name: string): string[] {
  return ['inspect', '--format', '{{json .NetworkSettings.Ports}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', name];
}

/** is anything by this exact name left (teardown proof) */
export function containerByNameArgs(name: string): string[] {
  return ['ps', '-a', '-q', '--filter', `name=^${name}$`];
}
export function networkByNameArgs(name: string): string[] {
  return ['network', 'ls', '-q', '--filter', `name=^${name}$`];
}
