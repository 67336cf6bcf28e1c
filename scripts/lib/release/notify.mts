// Messages to the operator's Telegram admin chat.
import type { OpsEnv } from '../config/env.mts';
import { notifyOperation, summarize } from '../notify/notify.mts';

/** Optional message to ADMIN_CHAT_ID; never fails the operation. */
export async function notify(env: OpsEnv, text: string, apiRoot?: string): Promise<string> {
  // --- notify (issue 10): channels live in scripts/lib/notify; this keeps the old signature ---
  // callers of this legacy form report successes; failures go through notifyOperation with a reason
  return summarize(await notifyOperation(env, { operation: 'release', outcome: 'ok', text }, { apiRoot }));
  // --- end notify ---
}
