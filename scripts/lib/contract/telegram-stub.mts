// The Bot API stub of a polling bot's sandbox (bot shape polling; contract check): a poller calls getMe
// and getUpdates before it is up at all, and the sandbox has no route to Telegram (nor may the real
// token go there). So the sandbox's internal network gets a stub (commands/contract.mts
// TELEGRAM_STUB_SCRIPT) that answers those calls with a placeholder bot and no updates, and the app's
// TELEGRAM_API_ROOT points at it (contract/sandbox-env.mts). An app that ignores TELEGRAM_API_ROOT
// still finds api.telegram.org refused at once, and the check says so (telegramErrorInLog).
import { docker } from '../docker/run.mts';
import { logsTailArgs, telegramStubRunArgs } from '../commands/contract.mts';

/** how long the stub may take to listen (a Bun start is ~100 ms; a busy host more) */
const STUB_READY_MS = 10_000;

/**
 * Start the stub on `network` and return once it listens; the caller removes the container with the
 * sandbox's (it carries the sandbox's label). Throws when it does not come up: the check cannot judge a
 * poller without it.
 */
export async function startTelegramStub(s: { name: string; network: string; probeImage: string; label?: string }): Promise<void> {
  const run = await docker(telegramStubRunArgs(s), { nothrow: true });
  if (run.exitCode !== 0) throw new Error(`starting the sandbox's Bot API stub (${s.probeImage}) failed: ${run.stderr.trim().slice(0, 300)}`);
  const until = performance.now() + STUB_READY_MS;
  for (;;) {
    const out = await docker(logsTailArgs(s.name, 5), { nothrow: true });
    if (out.stdout.includes('listening')) return;
    if (performance.now() > until) throw new Error(`the sandbox's Bot API stub did not listen within ${STUB_READY_MS / 1000} s: ${(out.stderr || out.stdout).trim().slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
