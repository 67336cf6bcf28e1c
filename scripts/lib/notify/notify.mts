// The one call operations make to tell the operator: notifyOperation(env, message). It never fails
// the operation; what each channel did is returned and written to the ops log (secrets redacted).
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { selectChannels, sendToChannels, type ChannelResult } from './channels.mts';
import { redactMessage, type OpMessage } from './message.mts';
import type { RetryPolicy } from './retry.mts';

export type { OpMessage, Outcome, AlertInfo } from './message.mts';

export interface NotifyOptions {
  log?: Logger;
  /** Bot API root as reachable from this host (default TELEGRAM_API_ROOT) */
  apiRoot?: string;
  timeoutMs?: number;
  /** how a failed send is tried again (channels.mts; default 3 attempts within 20 s) */
  retry?: RetryPolicy;
}

/** One line per channel, e.g. "telegram: sent to chat 42; webhook: not sent (https://h/<redacted>: HTTP 500)"; '' when none is configured. */
export function summarize(results: ChannelResult[]): string {
  return results.map((r) => `${r.channel}: ${r.ok ? r.detail : `not sent (${r.detail})`}`).join('; ');
}

export async function notifyOperation(env: Pick<OpsEnv, 'values'>, message: OpMessage, opts: NotifyOptions = {}): Promise<ChannelResult[]> {
  const channels = selectChannels(env.values, opts.apiRoot);
  if (!channels.length) return [];
  let results: ChannelResult[];
  try {
    results = await sendToChannels(channels, redactMessage(message, env.values), { timeoutMs: opts.timeoutMs, retry: opts.retry });
  } catch (e) {
    // sendToChannels does not throw; this guards the promise "a channel never fails the operation"
    results = [{ channel: channels[0].name, ok: false, detail: `notify crashed: ${(e as Error).message}` }];
  }
  for (const r of results) {
    if (r.ok) opts.log?.debug(`notify ${r.channel}: ${r.detail}`);
    else opts.log?.warn(`notification not sent via ${r.channel}: ${r.detail}`);
  }
  return results;
}
