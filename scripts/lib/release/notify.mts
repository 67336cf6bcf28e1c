// Messages to the operator's Telegram admin chat.
import type { OpsEnv } from '../config/env.mts';
import { errorMessage } from '../cli/errors.mts';
import { hostApiRoot, redactToken, sendMessage } from '../telegram/bot-api.mts';

/** Optional message to ADMIN_CHAT_ID; never fails the operation. */
export async function notify(env: OpsEnv, text: string, apiRoot?: string): Promise<string> {
  const v = env.values;
  if (!v.BOT_TOKEN || !v.ADMIN_CHAT_ID) return '';
  try {
    await sendMessage(hostApiRoot(v, apiRoot), v.BOT_TOKEN, v.ADMIN_CHAT_ID, text);
    return `sent to chat ${v.ADMIN_CHAT_ID}`;
  } catch (e) {
    return `not sent (${redactToken(errorMessage(e), v.BOT_TOKEN)})`;
  }
}
