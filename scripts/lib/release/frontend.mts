// The front end is part of every release. The proxy image (docker/caddy: the Mini App and the
// Caddyfile) is built with the release's tag; its content is copied out to
// STATE_DIR/frontend/<tag>/{site,Caddyfile,release.json}, and STATE_DIR/frontend/current is a
// symlink to the live one. Caddy sees that directory read-only (docker-compose.yml) and serves
// current/site, so going live is one atomic rename of the symlink plus a graceful `caddy reload` of
// current/Caddyfile: the Caddy container, its listeners and its held requests are never replaced.
// A rollback or a revert points `current` back; retention removes the front ends of pruned releases.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { composeCtx, composeEnv } from '../commands/compose.mts';
import {
  IMAGE_CADDYFILE, IMAGE_SITE_DIR, PROXY_DOCKERFILE, PROXY_TARGET_NO_FRONTEND, copyOutArgs, createForCopyArgs, reloadCaddyArgs, removeContainerArgs,
} from '../commands/frontend.mts';
import { docker } from '../docker/run.mts';
import { imageIdArgs, projectContainersArgs, tagArgs } from '../commands/docker.mts';
import { fsyncDir } from '../host/fsutil.mts';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { StepError } from '../cli/errors.mts';
import { buildArgs } from './plan.mts';

/** served at /<RELEASE_FILE> by the Mini App's file server: smoke compares it with the live release */
export const RELEASE_FILE = 'lazyflow-release.json';
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export const frontendRoot = (env: Pick<OpsEnv, 'layout'>) => path.join(env.layout.root, 'frontend');
export const proxyImageFor = (env: Pick<OpsEnv, 'values'>, tag: string) => `${env.values.PROXY_IMAGE || 'lazyflow-caddy'}:${tag}`;

export interface FrontendState {
  /** tag `current` points at; null: none yet (Caddy serves the content of its own image) */
  live: string | null;
  /** tags with a complete front end on disk */
  staged: string[];
}

export function observeFrontend(env: Pick<OpsEnv, 'layout'>): FrontendState {
  const root = frontendRoot(env);
  let live: string | null = null;
  try {
    live = fs.readlinkSync(path.join(root, 'current'));
  } catch {
    /* no current yet */
  }
  let staged: string[] = [];
  try {
    // real directories only: `current` is the symlink to one of them
    staged = fs.readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && TAG_RE.test(d.name) && fs.existsSync(path.join(root, d.name, RELEASE_FILE_ON_DISK)))
      .map((d) => d.name);
  } catch {
    /* no frontend dir yet */
  }
  return { live, staged };
}

/** the marker that a staged front end is complete (written last, before the rename into place) */
const RELEASE_FILE_ON_DISK = path.join('site', RELEASE_FILE);

/** Build the release's proxy image from the release's own source (docker's layer cache makes an unchanged front end cheap). */
export async function buildProxyImage(env: OpsEnv, tag: string, source: string, labels: Record<string, string> = {}, toolkitDir = '', miniApp = true): Promise<string> {
  const build = proxyBuildArgs(env, tag, source, labels, { toolkitDir, miniApp });
  const r = await docker(build.argv, { nothrow: true });
  if (r.exitCode !== 0) {
    throw new StepError(`building the proxy image ${build.ref} failed:\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`, { step: 'build' });
  }
  // the Caddy container runs PROXY_TAG (default `local`): the first deploy needs it to exist
  const runTag = proxyImageFor(env, env.values.PROXY_TAG || 'local');
  if (runTag !== build.ref && (await docker(imageIdArgs(runTag), { nothrow: true })).exitCode !== 0) await docker(tagArgs(build.ref, runTag));
  return build.ref;
}

/**
 * The proxy image's build args for the front end: FRONTEND_DIR (its sources), FRONTEND_BUILD (the
 * command), FRONTEND_DIST (its output), relative to the repository root, from the env file; and
 * FRONTEND_PACKAGE_DIR, the nearest directory at or above FRONTEND_DIR with a package.json (where the
 * dependencies are installed and the command runs). Unset keys are left to the Dockerfile's defaults
 * (the reference app's app/web, `bun run build:web`). `exists` looks at the release's source.
 */
export function frontendBuildArgs(values: Record<string, string | undefined>, exists: (rel: string) => boolean): Record<string, string | undefined> {
  const clean = (p: string | undefined) => (p ?? '').trim().replace(/^\.\/+/, '').replace(/\/+$/, '');
  const dir = clean(values.FRONTEND_DIR);
  if (!dir && !values.FRONTEND_BUILD?.trim() && !values.FRONTEND_DIST?.trim()) return {};
  let pkg: string | undefined;
  if (dir) {
    const parts = dir.split('/');
    for (let n = parts.length; n >= 0 && pkg === undefined; n--) {
      const at = parts.slice(0, n).join('/') || '.';
      if (exists(`${at === '.' ? '' : `${at}/`}package.json`)) pkg = at;
    }
  }
  return {
    FRONTEND_PACKAGE_DIR: pkg,
    FRONTEND_DIR: dir || undefined,
    FRONTEND_BUILD: values.FRONTEND_BUILD?.trim() || undefined,
    FRONTEND_DIST: clean(values.FRONTEND_DIST) || (dir ? `${dir}/dist` : undefined),
  };
}

/**
 * `docker build` of the release's proxy image: the release's own docker/caddy/Dockerfile, Caddyfile and
 * front end. toolkitDir: where the toolkit sits in the source ('' in its own repository, e.g. 'deploy'
 * in an app's repository that carries it); the build context is always the repository root.
 */
export function proxyBuildArgs(env: Pick<OpsEnv, 'values'>, tag: string, source: string, labels: Record<string, string> = {}, o: { toolkitDir?: string; exists?: (rel: string) => boolean; miniApp?: boolean } = {}) {
  const ctx = source.replace(/\/$/, '');
  const toolkitDir = (o.toolkitDir ?? '').replace(/^\.?\/*|\/+$/g, '');
  const exists = o.exists ?? ((rel: string) => fs.existsSync(path.join(ctx, rel)));
  return buildArgs({
    contextDir: ctx, dockerfile: `${ctx}/${toolkitDir ? `${toolkitDir}/` : ''}${PROXY_DOCKERFILE}`, image: env.values.PROXY_IMAGE || 'lazyflow-caddy', appTag: tag, labels,
    buildArgs: {
      BUN_IMAGE: env.values.BUN_IMAGE || process.env.BUN_IMAGE || undefined,
      CADDY_IMAGE: env.values.CADDY_IMAGE || process.env.CADDY_IMAGE || undefined,
      TOOLKIT_DIR: toolkitDir || undefined,
      // a bot without a Mini App (RUNBOOK "Bot shapes"): the proxy stage alone, nothing of a front end built
      ...(o.miniApp === false ? {} : frontendBuildArgs(env.values, exists)),
    },
    ...(o.miniApp === false ? { target: PROXY_TARGET_NO_FRONTEND } : {}),
  });
}

/**
 * Copy an image's front end to STATE_DIR/frontend/<tag> (temporary name, then rename: a half copy is
 * never taken for a release). Idempotent: an existing complete copy is kept.
 */
export async function stageFrontend(env: OpsEnv, tag: string, source: { image: string } | { container: string }, meta: Record<string, unknown> = {}): Promise<string> {
  if (!TAG_RE.test(tag)) throw new StepError(`"${tag}" cannot name a front end directory`, { step: 'build' });
  const root = frontendRoot(env);
  const dir = path.join(root, tag);
  if (fs.existsSync(path.join(dir, RELEASE_FILE_ON_DISK))) return dir;
  fs.mkdirSync(root, { recursive: true, mode: 0o755 });
  const tmp = path.join(root, `.staging-${tag}-${randomBytes(3).toString('hex')}`);
  fs.mkdirSync(tmp, { mode: 0o755 });
  const copyFrom = 'container' in source ? source.container : `${env.project}-frontend-copy-${randomBytes(4).toString('hex')}`;
  try {
    if ('image' in source) await docker(createForCopyArgs(source.image, copyFrom));
    await docker(copyOutArgs(copyFrom, IMAGE_SITE_DIR, path.join(tmp, 'site')));
    await docker(copyOutArgs(copyFrom, IMAGE_CADDYFILE, path.join(tmp, 'Caddyfile')));
    const links = linksIn(tmp);
    if (links.length) {
      throw new StepError(
        `the front end of ${'image' in source ? source.image : `container ${source.container}`} holds symbolic links (${links.slice(0, 5).join(', ')}${links.length > 5 ? `, ${links.length - 5} more` : ''}): refused, since Caddy's file_server would follow them anywhere in its container (its certificates and keys in /data/caddy included)`,
        { step: 'build', hint: 'make the Mini App build output plain files and directories (copy instead of linking), then deploy again' },
      );
    }
    const marker = path.join(tmp, RELEASE_FILE_ON_DISK);
    fs.writeFileSync(marker, `${JSON.stringify({ appTag: tag, ...meta })}\n`, { mode: 0o644 });
    const fd = fs.openSync(marker, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true }); // an incomplete copy of an earlier attempt
    fs.renameSync(tmp, dir);
    fsyncDir(root);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (err instanceof StepError) throw err;
    throw new StepError(`copying the front end of ${'image' in source ? source.image : `container ${source.container}`} failed: ${(err as Error).message.split('\n')[0]}`, { step: 'build' });
  } finally {
    if ('image' in source) await docker(removeContainerArgs(copyFrom), { nothrow: true });
  }
  return dir;
}

/** every symbolic link under dir (dir itself included), relative to it: `docker cp` keeps links as they are */
export function linksIn(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) out.push(r);
      else if (e.isDirectory()) walk(path.join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Point `current` at a staged front end (atomic) and have the running Caddy load its Caddyfile. */
export async function activateFrontend(env: OpsEnv, tag: string, log?: Logger): Promise<void> {
  const root = frontendRoot(env);
  if (!fs.existsSync(path.join(root, tag, RELEASE_FILE_ON_DISK))) {
    throw new StepError(`no front end staged for ${tag} in ${root}`, { step: 'frontend', hint: `node scripts/rollout.mts --config ${env.file}` });
  }
  if (observeFrontend(env).live !== tag) {
    const link = path.join(root, `.current-${randomBytes(3).toString('hex')}`);
    fs.symlinkSync(tag, link);
    fs.renameSync(link, path.join(root, 'current'));
    fsyncDir(root);
  }
  const r = await docker(reloadCaddyArgs(composeCtx(env)), { nothrow: true, env: composeEnv(env.values) });
  if (r.exitCode !== 0) {
    const out = (r.stderr || r.stdout).trim();
    // not running: it loads `current` when it starts
    if (/is not running|no container found|service "caddy" is not running/i.test(out)) return;
    throw new StepError(`Caddy did not load the front end of ${tag}: ${out.split('\n').slice(-3).join(' | ')}`, {
      step: 'frontend', hint: `docker compose -p ${env.project} logs --tail 50 caddy`,
    });
  }
  log?.debug(`front end ${tag} is live`);
}

/**
 * Before the first front end goes live, keep what Caddy serves now as the front end of the release
 * that runs (from the running Caddy container), so a revert or a rollback has it to go back to.
 */
export async function keepServedFrontend(env: OpsEnv, runningTag: string | null | undefined): Promise<void> {
  if (!runningTag || !TAG_RE.test(runningTag)) return;
  const state = observeFrontend(env);
  if (state.live || state.staged.includes(runningTag)) return;
  const ps = await docker(projectContainersArgs(env.project, { service: 'caddy' }), { nothrow: true });
  const id = ps.stdout.trim().split('\n')[0];
  if (id) await stageFrontend(env, runningTag, { container: id }, { keptFrom: 'the running proxy container' });
}

/** Retention: front ends of releases whose images were pruned (never the live one). */
export function pruneFrontends(env: OpsEnv, keepTags: string[]): string[] {
  const { live, staged } = observeFrontend(env);
  const keep = new Set([...keepTags, ...(live ? [live] : [])]);
  const removed: string[] = [];
  // leftovers of a copy or a switch that was killed halfway
  for (const e of fs.existsSync(frontendRoot(env)) ? fs.readdirSync(frontendRoot(env)) : []) {
    if (e.startsWith('.staging-') || e.startsWith('.current-')) fs.rmSync(path.join(frontendRoot(env), e), { recursive: true, force: true });
  }
  for (const t of staged) {
    if (keep.has(t)) continue;
    fs.rmSync(path.join(frontendRoot(env), t), { recursive: true, force: true });
    removed.push(t);
  }
  return removed;
}
