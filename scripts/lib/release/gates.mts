// The gates a new release must pass after the swap: health through Caddy, Telegram, smoke.
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { GateError, errorMessage } from '../cli/errors.mts';
import { readDeadLetters, readHandledUpdateMax, runSmoke, smokeTarget, type SmokeOptions } from '../checks/smoke.mts';
import { httpsGet, type Target } from '../checks/http.mts';
import { evalDeadLetters, evalHealth, evalWebhookInfo, expectedWebhookUrl, healthFields, redactSecret, type SmokeResult } from '../checks/evaluate.mts';
import { getWebhookInfo, hostApiRoot, redactToken, setWebhook } from '../telegram/bot-api.mts';
import { appDiagnostics, liveApp } from '../docker/app-container.mts';
import { judgePollingQueue, judgeQueue, judgeSmoke, judgeWebhookError, type PollingObs, type QueueObs, type SwapWindow } from './judge.mts';
import { pollingBot } from '../config/shape.mts';
import { maintenanceStatus, readMaintenance } from '../maintenance/maintenance.mts';

export interface GateOptions {
  /** seconds to wait for the new container to become healthy */
  healthTimeoutS?: number;
  /** seconds to wait for the Telegram webhook to be registered and drained */
  telegramTimeoutS?: number;
  pendingMax?: number;
  smoke?: SmokeOptions;
  skipSmoke?: boolean;
  /** graceful stop timeout of the old container (default: compose's stop_grace_period) */
  stopTimeoutS?: number;
}

/** how long /health through Caddy may take: --health-timeout when given (a first certificate can take longer than the default), never under 30 s */
export const healthGateMs = (healthTimeoutS?: number) => Math.max(30, healthTimeoutS ?? 30) * 1000;

/**
 * /health through Caddy answers 200 and the release answers: /health reports the release's version, or,
 * for an app without one (contract item health-version), the running app container's image is the
 * release's (there is never a second app container), and the result says that is what was compared.
 */
export async function healthGate(env: OpsEnv, appTag: string, o: { smoke?: SmokeOptions; timeoutMs?: number; target?: Target }): Promise<string> {
  if (pollingBot(env.values)) return containerHealthGate(env, appTag, o.timeoutMs ?? healthGateMs());
  const target = o.target ?? (await smokeTarget(env, o.smoke ?? {}));
  const deadline = performance.now() + (o.timeoutMs ?? healthGateMs());
  let last = '';
  for (;;) {
    // TLS is judged by smoke's tls check; this gate is about the release Caddy serves.
    const r = await httpsGet(target, '/health', { timeoutMs: 10_000 });
    if (!r.error && r.status === 200) {
      const version = healthFields(r.body).version;
      const live = typeof version === 'string' && version !== '' ? null : await liveApp(env);
      const v = evalHealth(r, appTag, live && { imageRef: live.imageRef, tag: live.tag, status: live.status });
      if (v.status === 'pass') return `https://${env.domain}/health -> ${v.detail}`;
      last = v.detail;
    } else last = r.error ?? `HTTP ${r.status}`;
    if (performance.now() > deadline) throw new GateError(`/health through Caddy did not answer for ${appTag} (last: ${last})`, { step: 'health', diagnostics: await appDiagnostics(env) });
    await new Promise((res) => setTimeout(res, 250));
  }
}

/**
 * A polling bot has no Caddy to ask (bot shape polling): the one app container runs the release's image
 * and Docker reports its own healthcheck (HEALTHCHECK_PATH inside the container) healthy.
 */
async function containerHealthGate(env: OpsEnv, appTag: string, timeoutMs: number): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    const live = await liveApp(env);
    if (live && live.status === 'running' && live.tag === appTag && live.health === 'healthy') {
      return `app container ${live.id.slice(0, 12)} runs ${live.imageRef}, its healthcheck reports healthy (bot shape polling: no Caddy, health inside the container)`;
    }
    last = live ? `${live.imageRef} ${live.status}/${live.health ?? 'no healthcheck'}` : 'no app container';
    if (performance.now() > deadline) throw new GateError(`the app container did not become healthy on ${appTag} (last: ${last})`, { step: 'health', diagnostics: await appDiagnostics(env) });
    await new Promise((res) => setTimeout(res, 250));
  }
}

/**
 * Telegram gate: webhook registered at APP_URL/webhook/SECRET, no delivery error the release caused,
 * and the queue drains or moves (judgeQueue). Registering the webhook is not part of the app contract:
 * an app may do it at start-up (the reference app does), and when the webhook points elsewhere or
 * nowhere once the release is healthy, the toolkit registers it itself (setWebhook with secret_token)
 * and says so.
 */
export async function telegramGate(env: OpsEnv, startedAt: string, o: { timeoutMs?: number; pendingMax?: number; apiRoot?: string; swapWindow?: SwapWindow }): Promise<string> {
  const started = Date.parse(startedAt);
  const window: SwapWindow = o.swapWindow ?? { beganAt: started, endedAt: started };
  const v = env.values;
  const token = v.BOT_TOKEN ?? '';
  if (!token) return 'skipped: local mode (no BOT_TOKEN), Telegram is not used';
  const root = hostApiRoot(v, o.apiRoot);
  if (pollingBot(v)) return pollingGate(env, root, token, o);
  const expectedUrl = expectedWebhookUrl(env.appUrl, v.WEBHOOK_SECRET ?? '');
  const pendingMax = o.pendingMax ?? 10;
  const deadline = performance.now() + (o.timeoutMs ?? 60_000);
  let first: QueueObs | undefined;
  let prev: QueueObs | undefined;
  let last = '';
  let registered = '';
  for (;;) {
    try {
      const info = await getWebhookInfo(root, token);
      if (info.url !== expectedUrl && !registered) {
        await setWebhook(root, token, expectedUrl, v.WEBHOOK_SECRET ?? '');
        registered = `webhook registered by the toolkit (it was ${info.url ? `"${redactSecret(redactToken(info.url, token), v.WEBHOOK_SECRET ?? '')}"` : 'not set'})`;
        continue;
      }
      // maintenance answers Telegram 503 on purpose: no update reaches the release until it ends, so
      // the queue cannot be judged; it stays on (rollout keeps it) and the updates arrive after --off
      if (info.url === expectedUrl && maintenanceStatus(readMaintenance(env.layout), new Date()).on) {
        const held = `maintenance on: Telegram holds ${info.pending_update_count} update(s) for after it (not judged)`;
        return registered ? `${registered}; ${held}` : held;
      }
      // errors are judged here, against the swap window, not by evalWebhookInfo's "since start"
      const whose = judgeWebhookError(info, window);
      if (whose === 'release' && info.url === expectedUrl) {
        throw new GateError(`Telegram: delivery error at ${new Date(info.last_error_date! * 1000).toISOString()}, after the swap: ${info.last_error_message ?? '?'}`, { step: 'telegram', diagnostics: await appDiagnostics(env) });
      }
      const now: QueueObs = { urlOk: info.url === expectedUrl, pending: info.pending_update_count, handledMax: readHandledUpdateMax(env.layout.db) };
      first ??= now;
      const verdict = judgeQueue(first, prev, now, pendingMax);
      prev = now;
      if (verdict.status === 'pass') {
        if (whose === 'swap-window') verdict.detail += `; the last error (${info.last_error_message}) came from the swap window itself, not the release`;
        // Dead letters are information, never a failure: they are updates the app gave up on, not the release.
        const dl = evalDeadLetters(readDeadLetters(env.layout.db));
        const detail = registered ? `${registered}; ${verdict.detail}` : verdict.detail;
        return dl.status === 'warn' ? `${detail}; ${dl.detail}` : detail;
      }
      last = now.urlOk ? verdict.detail : evalWebhookInfo(info, { expectedUrl, secret: v.WEBHOOK_SECRET ?? '', pendingMax }).detail;
    } catch (e) {
      if (e instanceof GateError) throw e;
      last = redactToken(errorMessage(e), token);
    }
    if (performance.now() > deadline) throw new GateError(`Telegram gate: ${last}`, { step: 'telegram', diagnostics: await appDiagnostics(env) });
    await new Promise((res) => setTimeout(res, 500));
  }
}

/**
 * The Telegram gate of a polling bot: no webhook set (the toolkit never registers one for it: the app's
 * getUpdates would get 409) and the queue moves (judgePollingQueue). Delivery errors do not exist here:
 * nothing delivers to a poller.
 */
async function pollingGate(env: OpsEnv, root: string, token: string, o: { timeoutMs?: number; pendingMax?: number }): Promise<string> {
  const pendingMax = o.pendingMax ?? 10;
  const deadline = performance.now() + (o.timeoutMs ?? 60_000);
  let first: PollingObs | undefined;
  let prev: PollingObs | undefined;
  let last = '';
  for (;;) {
    try {
      const info = await getWebhookInfo(root, token);
      const now: PollingObs = { url: redactToken(info.url ?? '', token), pending: info.pending_update_count, handledMax: readHandledUpdateMax(env.layout.db) };
      first ??= now;
      const verdict = judgePollingQueue(first, prev, now, pendingMax);
      prev = now;
      if (verdict.status === 'pass') {
        const dl = evalDeadLetters(readDeadLetters(env.layout.db));
        return dl.status === 'warn' ? `${verdict.detail}; ${dl.detail}` : verdict.detail;
      }
      last = verdict.detail;
    } catch (e) {
      last = redactToken(errorMessage(e), token);
    }
    if (performance.now() > deadline) throw new GateError(`Telegram gate (polling): ${last}`, { step: 'telegram', diagnostics: await appDiagnostics(env) });
    await new Promise((res) => setTimeout(res, 500));
  }
}

export async function smokeGate(env: OpsEnv, appTag: string, o: { smoke?: SmokeOptions; log: Logger }): Promise<SmokeResult[]> {
  const report = await runSmoke(env, { ...(o.smoke ?? {}), expectVersion: appTag, log: o.log });
  const { failed, warnings } = judgeSmoke(report.results);
  for (const r of failed) o.log.error(`smoke ${r.name}: FAIL ${r.detail}`);
  for (const r of warnings) o.log.warn(`smoke ${r.name}: ${r.detail}`);
  if (failed.length) {
    throw Object.assign(new GateError(`smoke failed: ${failed.map((r) => `${r.name} (${r.detail})`).join('; ')}`, { step: 'smoke' }), { results: report.results });
  }
  return report.results;
}
