// The app container's healthcheck as data: the argv Docker runs in the container every 2 s, as
// docker-compose.yml (bash, the default) or docker/compose.bun-healthcheck.yml (Bun, for images
// without bash) write it, after compose has put in HEALTHCHECK_PATH. The contract checker runs the
// same argv in the candidate image (item healthcheck); test/unit/healthcheck.test.ts keeps both
// compose files equal to these builders.

/** the reference app's write probe; an app without it sets HEALTHCHECK_PATH=/health */
export const DEFAULT_HEALTHCHECK_PATH = '/health/write';
/** the compose file that swaps the bash probe for the Bun one (in COMPOSE_FILE) */
export const BUN_HEALTHCHECK_FILE = 'docker/compose.bun-healthcheck.yml';

export type ProbeKind = 'bash' | 'bun';

/** bash (default) or bun: bun when the env file's COMPOSE_FILE names docker/compose.bun-healthcheck.yml */
export function healthcheckKind(composeFiles: readonly string[]): ProbeKind {
  return composeFiles.some((f) => f.replace(/\\/g, '/').endsWith(BUN_HEALTHCHECK_FILE)) ? 'bun' : 'bash';
}

export function healthcheckPath(values: Record<string, string | undefined>): string {
  return (values.HEALTHCHECK_PATH ?? '').trim() || DEFAULT_HEALTHCHECK_PATH;
}

/** The probe's argv (Docker's test without "CMD"): exit 0 when GET <path> on 127.0.0.1:$PORT answers 200. */
export function healthcheckArgv(kind: ProbeKind, path: string): string[] {
  if (kind === 'bun') {
    return ['bun', '-e', `fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '${path}', { signal: AbortSignal.timeout(2000) }).then(async (r) => { if (r.status === 200) process.exit(0); console.log('health: ' + r.status + ' ' + (await r.text()).slice(0, 200)); process.exit(1); }, (e) => { console.log('health: ' + e); process.exit(1); })`];
  }
  return ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/\${PORT:-3000} || exit 1; printf 'GET ${path} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n' >&3; IFS= read -r -d '' -t 2 r <&3; [[ $r == 'HTTP/1.'?' 200 '* ]] && exit 0; echo "health: \${r%%$'\\r'*} \${r#*$'\\r\\n\\r\\n'}"; exit 1`];
}

/** `docker exec` of the probe in a running container, as Docker's healthcheck runs it (the contract checker). */
export function healthcheckExecArgs(container: string, kind: ProbeKind, path: string): string[] {
  return ['exec', container, ...healthcheckArgv(kind, path)];
}
