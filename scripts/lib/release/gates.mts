// The gates a new release must pass after the swap: health through Caddy, Telegram, smoke.
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { GateError, errorMessage } from '../cli/errors.mts';
import { runSmoke, smokeTarget, type SmokeOptions } from '../checks/smoke.mts';
import { httpsGet } from '../checks/http.mts';
import { evalWebhookInfo, expectedWebhookUrl, type SmokeResult } from '../checks/evaluate.mts';
import { getWebhookInfo, hostApiRoot, redactToken } from '../telegram/bot-api.mts';
import { appDiagnostics } from '../docker/app-container.mts';

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

export async function healthGate(env: OpsEnv, appTag: string, o: { smoke?: SmokeOptions; timeoutMs?: number }): Promise<string> {
  const target = await smokeTarget(env, o.smoke ?? {});
  const deadline = performance.now() + (o.timeoutMs ?? 30_000);
  let last = '';
  for (;;) {
    // TLS is judged by smoke's tls check; this gate is about the version Caddy serves.
    const r = await httpsGet(target, '/health', { timeoutMs: 10_000 });
    if (!r.error && r.status === 200) {
      try {
        const j = JSON.parse(r.body) as { version?: string; status?: string };
        if (j.version === appTag && j.status === 'ok') return `https://${env.domain}/health -> 200, version ${j.version}`;
        last = `version ${j.version}, status ${j.status}`;
      } catch {
        last = 'body is not JSON';
      }
    } else last = r.error ?? `HTTP ${r.status}`;
    if (performance.now() > deadline) throw new GateError(`/health through Caddy did not report version ${appTag} (last: ${last})`, { step: 'health', diagnostics: await appDiagnostics(env) });
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Telegram gate: webhook registered at APP_URL/webhook/SECRET, no delivery error since start, queue drains. */
export async function telegramGate(env: OpsEnv, startedAt: string, o: { timeoutMs?: number; pendingMax?: number; apiRoot?: string }): Promise<string> {
  const v = env.values;
  const token = v.BOT_TOKEN ?? '';
  if (!token) return 'skipped: local mode (no BOT_TOKEN), Telegram is not used';
  const root = hostApiRoot(v, o.apiRoot);
  const expectedUrl = expectedWebhookUrl(env.appUrl, v.WEBHOOK_SECRET ?? '');
  const pendingMax = o.pendingMax ?? 10;
  const deadline = performance.now() + (o.timeoutMs ?? 60_000);
  let last = '';
  for (;;) {
    try {
      const info = await getWebhookInfo(root, token);
      const verdict = evalWebhookInfo(info, { expectedUrl, secret: v.WEBHOOK_SECRET ?? '', startedAt: new Date(startedAt), pendingMax });
      if (verdict.status === 'pass') return verdict.detail;
      last = verdict.detail;
      // a delivery error after the new container started will not go away by waiting
      if (/delivery error/.test(verdict.detail) && !/pending_update_count/.test(verdict.detail) && info.url === expectedUrl) {
        throw new GateError(`Telegram: ${verdict.detail}`, { step: 'telegram', diagnostics: await appDiagnostics(env) });
      }
    } catch (e) {
      if (e instanceof GateError) throw e;
      last = redactToken(errorMessage(e), token);
    }
    if (performance.now() > deadline) throw new GateError(`Telegram gate: ${last}`, { step: 'telegram', diagnostics: await appDiagnostics(env) });
    await new Promise((res) => setTimeout(res, 500));
  }
}

export async function smokeGate(env: OpsEnv, appTag: string, o: { smoke?: SmokeOptions; log: Logger }): Promise<SmokeResult[]> {
  const report = await runSmoke(env, { ...(o.smoke ?? {}), expectVersion: appTag, log: o.log });
  for (const r of report.results) {
    if (r.status === 'fail') o.log.error(`smoke ${r.name}: FAIL ${r.detail}`);
    else if (r.status === 'warn') o.log.warn(`smoke ${r.name}: ${r.detail}`);
  }
  if (report.failed) {
    const failed = report.results.filter((r) => r.status === 'fail');
    throw Object.assign(new GateError(`smoke failed: ${failed.map((r) => `${r.name} (${r.detail})`).join('; ')}`, { step: 'smoke' }), { results: report.results });
  }
  return report.results;
}
