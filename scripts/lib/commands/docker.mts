// Plain `docker` commands (not compose) as data, Kamal style: pure functions return argument arrays,
// docker/run.mts runs them, test/unit/docker-commands.test.ts compares the arrays. The project's
// containers are found by the labels Compose puts on them, never by name.

/** containers of a Compose project (optionally one service): ids, running only unless all */
export function projectContainersArgs(project: string, o: { service?: string; all?: boolean; noTrunc?: boolean } = {}): string[] {
  return [
    'ps',
    ...(o.all ? ['-a'] : []),
    '-q',
    ...(o.noTrunc ? ['--no-trunc'] : []),
    '--filter',
    `label=com.docker.compose.project=${project}`,
    ...(o.service ? ['--filter', `label=com.docker.compose.service=${o.service}`] : []),
  ];
}

/** docker inspect of containers (JSON array) */
export function inspectArgs(ids: readonly string[]): string[] {
  if (ids.length === 0) throw new Error('inspectArgs: no container');
  return ['inspect', ...ids];
}

/** the image id of a local image; exit non-zero when it does not exist here */
export function imageIdArgs(ref: string): string[] {
  return ['image', 'inspect', '--format', '{{.Id}}', ref];
}

/** the image's id, filesystem layers and run configuration, as one JSON line (the contract gate's content hash) */
export function imageContentArgs(ref: string): string[] {
  return ['image', 'inspect', '--format', '{"Id":{{json .Id}},"Layers":{{json .RootFS.Layers}},"Config":{{json .Config}}}', ref];
}

/** the tags of one image repository present on this host */
export function imageTagsArgs(image: string): string[] {
  return ['images', image, '--format', '{{.Tag}}'];
}

export function imageRmArgs(ref: string): string[] {
  return ['image', 'rm', ref];
}

export function tagArgs(source: string, target: string): string[] {
  return ['tag', source, target];
}

/** the last lines a container logged (stdout and stderr) */
export function containerLogsArgs(id: string, tail: number): string[] {
  return ['logs', '--tail', String(tail), id];
}

/** stop containers by id (what compose did not see, e.g. one renamed mid-recreate) */
export function stopContainersArgs(ids: readonly string[], o: { timeoutS?: number } = {}): string[] {
  if (ids.length === 0) throw new Error('stopContainersArgs: no container');
  return ['stop', ...(o.timeoutS !== undefined ? ['-t', String(o.timeoutS)] : []), ...ids];
}

/** remove containers (force: running ones too); with volumes, their anonymous volumes as well */
export function removeContainersArgs(ids: readonly string[], o: { volumes?: boolean } = {}): string[] {
  if (ids.length === 0) throw new Error('removeContainersArgs: no container');
  return ['rm', '-f', ...(o.volumes ? ['-v'] : []), ...ids];
}

export function networkRmArgs(name: string): string[] {
  return ['network', 'rm', name];
}

/**
 * The build cache's bound (the daily backup job, schedules/jobs.mts): every cache entry unused for
 * `untilH` hours goes (--all: not only dangling ones), so the cache holds about a week of builds. A
 * build a week later rebuilds those layers. An age bound only: how --keep-storage combines with a
 * filter is not documented.
 */
export const BUILDER_PRUNE_UNTIL_H = 168;
export function builderPruneArgs(o: { untilH?: number } = {}): string[] {
  return ['builder', 'prune', '--force', '--all', '--filter', `until=${o.untilH ?? BUILDER_PRUNE_UNTIL_H}h`];
}
