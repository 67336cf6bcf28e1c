// The request paths Caddy sends to the app; everything else is the Mini App. One key in the env
// file, API_PATHS (space-separated Caddy path patterns), read by Caddy (docker/caddy/Caddyfile, via
// docker-compose.yml) and by smoke's `routes` check. The default is the lazyflow plans' list; the
// same literal stands in the Caddyfile and compose, and test/unit/api-paths.test.ts keeps them equal.

export const DEFAULT_API_PATHS =
  '/health /me /me/* /tasks /tasks/* /folders /folders/* /files /files/* /media /media/* /google /google/* /webhook/*';

/** Caddy path patterns from an API_PATHS value (whitespace-separated; empty = the default). */
export function parseApiPaths(value: string | undefined): string[] {
  const v = (value ?? '').trim();
  return (v || DEFAULT_API_PATHS).split(/\s+/).filter(Boolean);
}

/** A concrete path that the pattern matches: /x stays /x, /x/* becomes /x/<probe>. */
export function probePathFor(pattern: string, probe = 'smoke-route-probe'): string {
  return pattern.endsWith('/*') ? `${pattern.slice(0, -1)}${probe}` : pattern.replace(/\*+$/, probe);
}
