// The contract gate of a rollout: after the build and before anything of production is touched
// (pre-deploy backup, swap), the new image runs the required tier of the app contract in the
// checker's sandbox. A non-conforming image is refused, naming each failed item and its fix.
// A pass is cached per image (and the app's env) in STATE_DIR/contract-cache.json, so a re-run, a
// rollout back to an image already checked, or a release whose image has the same content as one that
// passed (a commit that changed nothing the image holds: only its tag and labels differ), does not pay
// again. The decisions are pure.
// A pass also records the paths the stack probes (READY_PATH, HEALTHCHECK_PATH) as the app answered
// them, where the env file sets none: STATE_DIR/probes.env, which compose and loadOpsEnv read.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { docker } from '../docker/run.mts';
import { imageContentArgs } from '../commands/docker.mts';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { StepError } from '../cli/errors.mts';
import { writeTextAtomic } from '../host/records.mts';
import { runContractCheck, sandboxEnv } from '../contract/check.mts';
import { probesEnvText, PROBES_ENV_FILE, withProbes, type ProbeKey, type StackProbes } from '../contract/probes.mts';
import { readyPathOf, type ItemResult } from '../contract/items.mts';
import { healthcheckKind, healthcheckPath } from '../commands/healthcheck.mts';

export const CONTRACT_CACHE_FILE = 'contract-cache.json';
export const CONTRACT_CACHE_MAX = 20;

export interface CacheEntry {
  /** docker image id (sha256:...) */
  imageId: string;
  /** the image's content (imageContentHash): another build of the same content is the same app */
  contentHash?: string;
  /** set on an entry a cached pass added: the image actually checked, whose content this one has */
  checkedAs?: string;
  /** hash of what the sandbox ran with (the app's env and the probe image): another env, another check */
  envHash: string;
  /** image reference it was checked as (for people reading the file) */
  image: string;
  checkedAt: string;
  ms: number;
  /** the recommended items the image lacks (recommendedNotice lines), printed again on a cached pass */
  notices?: string[];
  /** the paths the stack probes for this image and env (contract/probes.mts), recorded again on a cached pass */
  probes?: StackProbes;
}

/** The last refusal whose app exited at start-up naming env keys: preflight names those still missing. */
export interface MissingKeysRecord {
  image: string;
  at: string;
  keys: string[];
}

export interface ContractCache {
  version: 1;
  entries: CacheEntry[];
  missingKeys?: MissingKeysRecord;
}

export const contractCachePath = (stateDir: string) => path.join(path.resolve(stateDir), CONTRACT_CACHE_FILE);

/** Hash of the sandbox's input: the app keys and values it gets, the probe image, and what the stack
 * probes (READY_PATH, the healthcheck's kind and path). Never stored in clear. */
export function contractEnvHash(values: Record<string, string>, probeImage: string): string {
  const env = sandboxEnv(values);
  const text = Object.keys(env).sort().map((k) => `${k}=${env[k]}`).join('\n');
  const kind = healthcheckKind((values.COMPOSE_FILE ?? '').split(':').map((f) => f.trim()).filter(Boolean));
  const stack = `ready=${readyPathOf(values)}\nhealthcheck=${kind} ${healthcheckPath(values)}`;
  return createHash('sha256').update(`probe=${probeImage}\n${stack}\n${text}`).digest('hex').slice(0, 32);
}

/** Parse the cache file's text; anything unreadable is an empty cache (the gate then just checks again). */
export function parseContractCache(text: string | null): ContractCache {
  if (!text) return { version: 1, entries: [] };
  try {
    const c = JSON.parse(text) as Partial<ContractCache>;
    const entries = Array.isArray(c.entries) ? c.entries.filter((e) => e && typeof e.imageId === 'string' && typeof e.envHash === 'string') : [];
    const m = c.missingKeys;
    const missingKeys = m && typeof m.image === 'string' && Array.isArray(m.keys) ? { image: m.image, at: String(m.at), keys: m.keys.filter((k) => typeof k === 'string') } : undefined;
    return { version: 1, entries, ...(missingKeys ? { missingKeys } : {}) };
  } catch {
    return { version: 1, entries: [] };
  }
}

export type GateDecision = { run: false; reason: 'skipped' } | { run: false; reason: 'cached'; entry: CacheEntry } | { run: true; reason: 'not-cached' | 'env-changed' };

/** What of an image's configuration its app runs with: the rest (Labels, Image, Hostname, ...) says how it was built. */
export const RUN_CONFIG_KEYS = ['User', 'Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'ExposedPorts', 'Volumes', 'Healthcheck', 'StopSignal', 'Shell'] as const;

/**
 * The image's content: its filesystem layers (content-addressed diff ids) and the configuration its app
 * runs with, without APP_VERSION, which the toolkit itself sets to the release's tag at every build
 * (plan.mts buildArgs): two builds that differ only in tag, version and labels run the same app.
 * null when the inspect output lacks the layers (nothing is then matched by content).
 */
export function imageContentHash(inspect: { Layers?: unknown; Config?: Record<string, unknown> | null }): string | null {
  if (!Array.isArray(inspect.Layers) || !inspect.Layers.length || !inspect.Layers.every((l) => typeof l === 'string')) return null;
  const cfg = inspect.Config ?? {};
  const run: Record<string, unknown> = {};
  for (const k of RUN_CONFIG_KEYS) {
    const v = cfg[k];
    run[k] = k === 'Env' && Array.isArray(v) ? v.filter((e) => !String(e).startsWith('APP_VERSION=')) : (v ?? null);
  }
  return createHash('sha256').update(JSON.stringify({ layers: inspect.Layers, run })).digest('hex');
}

/**
 * Run the check, or not: --skip-contract; a cached pass of this image, or of an image with the same
 * content (contentHash), with this env; else a check to run.
 */
export function contractGateDecision(cache: ContractCache, o: { imageId: string; envHash: string; contentHash?: string | null; skip?: boolean }): GateDecision {
  if (o.skip) return { run: false, reason: 'skipped' };
  const same = cache.entries.filter((e) => e.imageId === o.imageId || (o.contentHash && e.contentHash === o.contentHash));
  const hit = same.find((e) => e.envHash === o.envHash && e.imageId === o.imageId) ?? same.find((e) => e.envHash === o.envHash);
  if (hit) return { run: false, reason: 'cached', entry: hit };
  return { run: true, reason: same.length ? 'env-changed' : 'not-cached' };
}

/** The cache after a pass: this entry newest, no duplicate of it, at most `max` entries (oldest dropped); a pass clears the missing keys. */
export function recordContractPass(cache: ContractCache, entry: CacheEntry, max = CONTRACT_CACHE_MAX): ContractCache {
  const rest = cache.entries.filter((e) => !(e.imageId === entry.imageId && e.envHash === entry.envHash));
  return { version: 1, entries: [...rest, entry].slice(-Math.max(1, max)) };
}

/** The cache after a refusal: the keys the app named as missing (none: the record goes). */
export function recordMissingKeys(cache: ContractCache, image: string, keys: string[], at: Date): ContractCache {
  const { missingKeys: _old, ...rest } = cache;
  return keys.length ? { ...rest, missingKeys: { image, at: at.toISOString(), keys } } : rest;
}

/** Keys of the last refusal that the env file still does not set (preflight names them). */
export function stillMissingKeys(cache: ContractCache, values: Record<string, string>): MissingKeysRecord | null {
  const m = cache.missingKeys;
  if (!m) return null;
  const keys = m.keys.filter((k) => (values[k] ?? '').trim() === '');
  return keys.length ? { ...m, keys } : null;
}

/** The cache file as it is on disk (unreadable or absent: empty). */
export function readContractCache(stateDir: string): ContractCache {
  try {
    return parseContractCache(fs.readFileSync(contractCachePath(stateDir), 'utf8'));
  } catch {
    return parseContractCache(null);
  }
}

/** The refusal: each failed required item, what was seen, and its fix. */
export function contractRefusal(image: string, results: ItemResult[]): string {
  const failed = results.filter((r) => r.tier === 'required' && r.status !== 'pass');
  const lines = [`${image} does not meet the required app contract (${failed.map((r) => r.id).join(', ')}); nothing live changed`];
  for (const r of failed) {
    lines.push(`  ${r.id} ${r.status}: ${r.detail} (${r.runbook})`);
    if (r.fix) for (const l of `fix: ${r.fix}`.split('\n')) lines.push(`      ${l}`);
  }
  return lines.join('\n');
}

function writeCache(file: string, cache: ContractCache): void {
  writeTextAtomic(file, JSON.stringify(cache, null, 1) + '\n', { fileMode: 0o600, dirMode: 0o755 });
}


export interface ContractGateResult {
  decision: GateDecision['reason'];
  imageId?: string;
  /** the image's content hash (imageContentHash), recorded with the release */
  contentHash?: string;
  ms: number;
  results?: ItemResult[];
  /** the recommended items the image lacks (printed as warnings by the gate) */
  notices?: string[];
  /** the paths the stack probes from now on (recorded in STATE_DIR/probes.env and the release) */
  probes?: StackProbes;
}

/** The env file's own values: without the probes loadOpsEnv filled in from the last record (what the check decides anew). */
export function explicitValues(env: Pick<OpsEnv, 'values' | 'recordedProbeKeys'>): Record<string, string> {
  const out = { ...env.values };
  for (const k of env.recordedProbeKeys ?? []) delete out[k];
  return out;
}

/** Record the probes: STATE_DIR/probes.env (atomic, only when it changes) and this env, so the swap that follows uses them. */
export function recordProbes(env: OpsEnv, probes: StackProbes): void {
  const file = path.join(path.resolve(env.stateDir), PROBES_ENV_FILE);
  const text = probesEnvText(probes);
  let old: string | null = null;
  try {
    old = fs.readFileSync(file, 'utf8');
  } catch {
    old = null;
  }
  if (old !== text) writeTextAtomic(file, text, { fileMode: 0o644, dirMode: 0o755 });
  const explicit = explicitValues(env);
  const chosen = Object.fromEntries((Object.keys(probes) as ProbeKey[]).map((k) => [k, probes[k].value]));
  env.values = withProbes(explicit, chosen);
  env.recordedProbeKeys = (Object.keys(probes) as ProbeKey[]).filter((k) => !(explicit[k] ?? '').trim());
  env.probesEnvFile = file;
}

/** The gate: throws StepError (rollout exit 1, nothing live changed) when the image fails the required tier. */
export async function contractGate(env: OpsEnv, image: string, log: Logger, o: { skip?: boolean } = {}): Promise<ContractGateResult> {
  const t0 = performance.now();
  if (o.skip) {
    log.warn('--skip-contract: the image was not checked against the app contract (RUNBOOK "The app contract")');
    return { decision: 'skipped', ms: 0 };
  }
  const inspect = await docker(imageContentArgs(image), { nothrow: true });
  if (inspect.exitCode !== 0) throw new StepError(`contract gate: image ${image} does not exist: ${inspect.stderr.trim()}`, { step: 'contract' });
  let seen: { Id: string; Layers?: unknown; Config?: Record<string, unknown> | null };
  try {
    seen = JSON.parse(inspect.stdout) as typeof seen;
  } catch {
    throw new StepError(`contract gate: docker image inspect ${image} gave no JSON: ${inspect.stdout.trim().slice(0, 200)}`, { step: 'contract' });
  }
  const imageId = seen.Id;
  const contentHash = imageContentHash(seen) ?? undefined;
  const probeImage = env.values.BUN_IMAGE || process.env.BUN_IMAGE || 'oven/bun:1.4.5-slim';
  const values = explicitValues(env);
  const recordedProbes = Object.fromEntries((env.recordedProbeKeys ?? []).map((k) => [k, env.values[k]]));
  // the hash of what the check runs with: the env file's values and the recorded probes
  const envHash = contractEnvHash(env.values, probeImage);
  const file = contractCachePath(env.stateDir);
  const cache = readContractCache(env.stateDir);
  const d = contractGateDecision(cache, { imageId, envHash, contentHash });
  if (!d.run) {
    const e = (d as { entry: CacheEntry }).entry;
    const as = e.imageId === imageId ? '' : ` as ${e.image} (${e.imageId.slice(7, 19)}), whose content (layers and run configuration) this image has,`;
    log.info(`contract: ${image} (${imageId.slice(7, 19)}) passed the required tier${as} on ${e.checkedAt} with this env: not checked again`);
    for (const n of e.notices ?? []) log.warn(`contract: ${n}`);
    if (e.probes) recordProbes(env, e.probes);
    // this image's own entry: a later rollout back to it matches by id
    if (e.imageId !== imageId) {
      try {
        writeCache(file, recordContractPass(cache, { ...e, imageId, image, checkedAs: e.checkedAs ?? e.image, ...(contentHash ? { contentHash } : {}) }));
      } catch {
        /* the content still matches next time */
      }
    }
    return { decision: 'cached', imageId, ...(contentHash ? { contentHash } : {}), ms: Math.round(performance.now() - t0), notices: e.notices ?? [], ...(e.probes ? { probes: e.probes } : {}) };
  }
  if (d.reason === 'env-changed') log.info('contract: this image passed before, but the app env (or the probe image) changed since: checking again');
  const report = await runContractCheck({ image, tier: 'required', appValues: values, recordedProbes, probeImage, log });
  if (report.exitCode !== 0) {
    const keys = report.missingKeys.length
      ? `\nthe app exited at start-up naming ${report.missingKeys.join(', ')}, which ${env.file} does not set: add ${report.missingKeys.length > 1 ? 'them' : 'it'} there (RUNBOOK.md#the-apps-own-settings)`
      : '';
    try {
      writeCache(file, recordMissingKeys(cache, image, report.missingKeys, new Date()));
    } catch {
      /* preflight then cannot name the keys; the refusal below does */
    }
    const telegram = report.telegramError
      ? `\nthe app exited because a call to Telegram's Bot API failed at start-up (${report.telegramError}): the sandbox has no route to Telegram, as the real BOT_TOKEN must not move the live webhook to an unchecked release; catch that error at start-up (the toolkit sets the webhook after the swap)`
      : '';
    const next = `next: ${report.missingKeys.length ? `add ${report.missingKeys.join(', ')} to ${env.file}, or ` : ''}fix the app, commit, roll out again (check an image by hand: node scripts/check-app.mts --image ${image} --config ${env.file})`;
    throw new StepError(`${contractRefusal(image, report.results)}${keys}${telegram}\n${next}`, { hint: next.slice(6) });
  }
  for (const n of report.notices) log.warn(`contract: ${n}`);
  const observed = Object.entries(report.probes).filter(([, c]) => c.source === 'observed');
  if (observed.length) log.info(`contract: the stack probes ${observed.map(([k, c]) => `${k}=${c.value}`).join(', ')}, as the app answers (set the key in ${env.file} to choose otherwise)`);
  recordProbes(env, report.probes);
  try {
    writeCache(file, recordContractPass(recordMissingKeys(cache, image, [], new Date()), { imageId, ...(contentHash ? { contentHash } : {}), envHash, image, checkedAt: new Date().toISOString(), ms: report.ms, notices: report.notices, probes: report.probes }));
  } catch (err) {
    log.warn(`contract: the pass could not be cached in ${file} (the next rollout checks again): ${(err as Error).message}`);
  }
  return { decision: d.reason, imageId, ...(contentHash ? { contentHash } : {}), ms: Math.round(performance.now() - t0), results: report.results, notices: report.notices, probes: report.probes };
}
