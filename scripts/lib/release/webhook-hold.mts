// The webhook hold: Telegram updates are acknowledged only by a release that has been judged.
//
// A release's gates run while it serves. If it fails one and its schema moved, the automatic revert
// restores the pre-deploy backup, and an update it answered 200 meanwhile would be gone: Telegram
// never resends an acknowledged update (nor one the old release answered after that backup was taken).
// So from just before the pre-deploy backup until the new release is judged (health, then smoke), Caddy answers /webhook/* with 503 (docker/caddy/Caddyfile, @webhook_held)
// as long as STATE_DIR/proxy/webhook-hold exists: Telegram keeps those updates queued and redelivers
// them. The hold is released just before the Telegram gate, which needs the queue to move; so the
// only updates a revert can still meet are those of a release that passed health and smoke and then
// failed the Telegram gate, whose revert holds the webhook again before it stops the app (see revert.mts).
import fs from 'node:fs';
import path from 'node:path';
import type { StateLayout } from '../config/state.mts';
import { writeJsonAtomic } from '../host/records.mts';

export const webhookHoldFile = (layout: Pick<StateLayout, 'root'>) => path.join(layout.root, 'proxy', 'webhook-hold');

/** Hold the webhook: Caddy answers 503 to Telegram until releaseWebhook. */
export function holdWebhook(layout: Pick<StateLayout, 'root'>, release: string): void {
  // 0755/0644 as the drain flag: Caddy must see it whoever runs the toolkit; it holds no secret
  writeJsonAtomic(webhookHoldFile(layout), { release, since: new Date().toISOString() }, { dirMode: 0o755, fileMode: 0o644 });
}

/** Let Telegram's updates through again; true when a hold was released. */
export function releaseWebhook(layout: Pick<StateLayout, 'root'>): boolean {
  const had = fs.existsSync(webhookHoldFile(layout));
  fs.rmSync(webhookHoldFile(layout), { force: true });
  return had;
}

export function webhookHeld(layout: Pick<StateLayout, 'root'>): boolean {
  return fs.existsSync(webhookHoldFile(layout));
}
