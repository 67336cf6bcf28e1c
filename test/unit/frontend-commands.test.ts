// The front end's docker commands as data: each argument one array element.
import { describe, expect, it } from 'vitest';
import { copyOutArgs, createForCopyArgs, reloadCaddyArgs, removeContainerArgs } from '../../scripts/lib/commands/frontend.mts';
import { proxyBuildArgs } from '../../scripts/lib/release/frontend.mts';

const ctx = { projectDir: '/srv/lazyflow deploy', envFile: '/srv/lazyflow deploy/.env.prod', project: 'lazyflow', composeFiles: [] };

describe('front end commands', () => {
  it('reload: the release Caddyfile, adapted with the release site as root, in the running caddy service', () => {
    expect(reloadCaddyArgs(ctx)).toEqual([
      'compose', '--project-directory', '/srv/lazyflow deploy', '--env-file', '/srv/lazyflow deploy/.env.prod', '-p', 'lazyflow',
      'exec', '-T', 'caddy', 'caddy', 'reload', '--config', '/srv/frontend/current/Caddyfile', '--adapter', 'caddyfile',
    ]);
  });

  it('copy out: a never-started container of the image, docker cp, removed', () => {
    expect(createForCopyArgs('lazyflow-caddy:abc', 'lazyflow-frontend-copy-1')).toEqual(['create', '--name', 'lazyflow-frontend-copy-1', '--label', 'org.lazyflow.role=frontend-copy', 'lazyflow-caddy:abc']);
    expect(copyOutArgs('c1', '/srv/miniapp', '/state/frontend/.staging-abc/site')).toEqual(['cp', 'c1:/srv/miniapp', '/state/frontend/.staging-abc/site']);
    expect(removeContainerArgs('c1')).toEqual(['rm', '-f', 'c1']);
  });

  it("the proxy image is built from the release's own source, tagged like the app", () => {
    const b = proxyBuildArgs({ values: { PROXY_IMAGE: 'acme-caddy', CADDY_IMAGE: 'caddy:2.11.4-alpine', BUN_IMAGE: '' } }, 'abc123', '/tmp/src dir/', { 'org.lazyflow.git-sha': 'abc123def' });
    expect(b.ref).toBe('acme-caddy:abc123');
    expect(b.argv[0]).toBe('build');
    expect(b.argv).toContain('/tmp/src dir/docker/caddy/Dockerfile');
    expect(b.argv.at(-1)).toBe('/tmp/src dir');
    expect(b.argv).toContain('CADDY_IMAGE=caddy:2.11.4-alpine');
    expect(b.argv).toContain('org.lazyflow.git-sha=abc123def');
  });
});
