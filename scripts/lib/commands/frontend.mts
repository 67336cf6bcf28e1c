// The release's front end (the Mini App and the Caddyfile, baked into the proxy image) as docker
// commands: build the proxy image for a release tag, copy its content out to STATE_DIR, and make the
// running Caddy load it. Pure builders (Kamal style); release/frontend.mts runs them.
import { composeArgs, type ComposeContext } from './compose.mts';

/** where the proxy image keeps what a release serves (docker/caddy/Dockerfile) */
export const IMAGE_SITE_DIR = '/srv/miniapp';
export const IMAGE_CADDYFILE = '/etc/caddy/Caddyfile';
/** where the caddy service sees STATE_DIR/frontend (docker-compose.yml) */
export const CONTAINER_FRONTEND_DIR = '/srv/frontend';

/** the proxy image's Dockerfile, relative to the release's source (built like the app: release/plan.mts buildArgs) */
export const PROXY_DOCKERFILE = 'docker/caddy/Dockerfile';
/** its stage without a front end: the proxy of a bot with no Mini App (BOT_SHAPE=webhook) */
export const PROXY_TARGET_NO_FRONTEND = 'proxy';

/** a stopped container of the image, only to copy files out of it (never started) */
export function createForCopyArgs(image: string, name: string): string[] {
  return ['create', '--name', name, '--label', 'org.lazyflow.role=frontend-copy', image];
}

export function copyOutArgs(container: string, from: string, to: string): string[] {
  return ['cp', `${container}:${from}`, to];
}

export function removeContainerArgs(container: string): string[] {
  return ['rm', '-f', container];
}

/**
 * The running Caddy adapts the release's Caddyfile and swaps its config in place. Caddy compares the
 * adapted config with the one it runs and does nothing when they are equal, which is the usual case:
 * the Caddyfile picks the live release's Mini App per request (docker/caddy/Caddyfile), so only a
 * release that changes the Caddyfile itself reloads.
 */
export function reloadCaddyArgs(ctx: ComposeContext): string[] {
  return composeArgs(ctx, 'exec', '-T', 'caddy', 'caddy', 'reload', '--config', `${CONTAINER_FRONTEND_DIR}/current/Caddyfile`, '--adapter', 'caddyfile');
}
