// The front end's docker commands as data: each argument one array element.
import { describe, expect, it } from 'vitest';
import { copyOutArgs, createForCopyArgs, reloadCaddyArgs, removeContainerArgs } from '../../scripts/lib/commands/frontend.mts';
import { frontendBuildArgs, proxyBuildArgs } from '../../scripts/lib/release/frontend.mts';

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
    // the reference app: the Dockerfile's own defaults, nothing about the front end passed
    expect(b.argv.join(' ')).not.toMatch(/FRONTEND_|TOOLKIT_DIR/);
  });

  it('a bot without a Mini App (BOT_SHAPE=webhook): the proxy stage alone, no front-end argument even when FRONTEND_* are set', () => {
    const values = { PROXY_IMAGE: 'acme-caddy', BUN_IMAGE: 'oven/bun:1.4.5-slim', CADDY_IMAGE: 'caddy:2.11.4-alpine', FRONTEND_DIR: 'web', FRONTEND_BUILD: 'bun run build' };
    const b = proxyBuildArgs({ values }, 'abc123', '/srv/bot', {}, { toolkitDir: 'deploy', exists: () => true, miniApp: false });
    expect(b.argv).toEqual([
      'build', '--tag', 'acme-caddy:abc123', '--file', '/srv/bot/deploy/docker/caddy/Dockerfile',
      '--build-arg', 'APP_VERSION=abc123', '--build-arg', 'BUN_IMAGE=oven/bun:1.4.5-slim', '--build-arg', 'CADDY_IMAGE=caddy:2.11.4-alpine', '--build-arg', 'TOOLKIT_DIR=deploy',
      '--target', 'proxy', '/srv/bot',
    ]);
  });

  it('the lazyflow layout: the toolkit in deploy/, the front end in frontend/ with the root package.json, its own build command', () => {
    const values = { PROXY_IMAGE: 'lazyflow-caddy', BUN_IMAGE: 'oven/bun:1.4.5-slim', CADDY_IMAGE: 'caddy:2.11.4-alpine', FRONTEND_DIR: 'frontend/', FRONTEND_BUILD: 'bun run build:frontend' };
    const b = proxyBuildArgs({ values }, 'abc123', '/srv/myapp', {}, { toolkitDir: 'deploy', exists: (rel) => rel === 'package.json' });
    expect(b.argv).toEqual([
      'build', '--tag', 'lazyflow-caddy:abc123', '--file', '/srv/myapp/deploy/docker/caddy/Dockerfile',
      '--build-arg', 'APP_VERSION=abc123', '--build-arg', 'BUN_IMAGE=oven/bun:1.4.5-slim', '--build-arg', 'CADDY_IMAGE=caddy:2.11.4-alpine', '--build-arg', 'TOOLKIT_DIR=deploy',
      '--build-arg', 'FRONTEND_PACKAGE_DIR=.', '--build-arg', 'FRONTEND_DIR=frontend', '--build-arg', 'FRONTEND_BUILD=bun run build:frontend', '--build-arg', 'FRONTEND_DIST=frontend/dist',
      '/srv/myapp',
    ]);
  });

  it.each<[string, Record<string, string>, string[], Record<string, string | undefined>]>([
    ['nothing set: the Dockerfile defaults (app/web, bun run build:web)', {}, ['app/package.json'], {}],
    ['a front end with a package.json of its own', { FRONTEND_DIR: 'web/mini-app' }, ['web/mini-app/package.json', 'package.json'],
      { FRONTEND_PACKAGE_DIR: 'web/mini-app', FRONTEND_DIR: 'web/mini-app', FRONTEND_BUILD: undefined, FRONTEND_DIST: 'web/mini-app/dist' }],
    ['the nearest package.json above', { FRONTEND_DIR: './packages/web/src', FRONTEND_DIST: 'packages/web/out/' }, ['packages/web/package.json'],
      { FRONTEND_PACKAGE_DIR: 'packages/web', FRONTEND_DIR: 'packages/web/src', FRONTEND_BUILD: undefined, FRONTEND_DIST: 'packages/web/out' }],
    ['static files, no build', { FRONTEND_DIR: 'public', FRONTEND_BUILD: 'true', FRONTEND_DIST: 'public' }, ['package.json'],
      { FRONTEND_PACKAGE_DIR: '.', FRONTEND_DIR: 'public', FRONTEND_BUILD: 'true', FRONTEND_DIST: 'public' }],
  ])('front end build args: %s', (_n, values, files, expected) => {
    expect(frontendBuildArgs(values, (rel) => files.includes(rel))).toEqual(expected);
  });
});
