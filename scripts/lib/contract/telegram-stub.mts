// The Bot API stub of a polling bot's sandbox (bot shape polling; the contract check and the restore
// drill): a poller calls getMe and getUpdates before it is up at all, and the sandbox has no route to
// Telegram (nor may the real token go there). So the sandbox's internal network gets a stub
// (commands/contract.mts TELEGRAM_STUB_SCRIPT) that answers those calls with a placeholder bot and no
// updates, and the app's TELEGRAM_API_ROOT points at it (contract/sandbox-env.mts). An app that ignores
// TELEGRAM_API_ROOT still finds api.telegram.org refused at once, and the check says so (telegramErrorInLog).
import { docker } from '../docker/run.mts';
import { logsTailArgs } from '../commands/contract.mts';

/** how long the stub may take to listen (a Bun start is ~100 ms; a busy host more) */
const STUB_READY_MS = 10_000;

/**
 * Start the stub (`runArgs`: commands/contract.mts telegramStubRunArgs) and return once it listens; the
 * caller removes the container with its sandbox (it carries the sandbox's labels). Throws when it does
 * not come up: a poller cannot be judged without it.
 */
export async function startTelegramStub(runArgs: string[], name: string): Promise<void> {
  const run = await docker(runArgs, { nothrow: true });
  if (run.exitCode !== 0) throw new Error(`starting the sandbox's Bot API stub failed: ${run.stderr.trim().slice(0, 300)}`);
  const until = performance.now() + STUB_READY_MS;
  for (;;) {
    const out = await docker(logsTailArgs(name, 5), { nothrow: true });
    if (out.stdout.includes('listening')) return;
    if (performance.now() > until) throw new Error(`the sandbox's Bot API stub did not listen within ${STUB_READY_MS / 1000} s: ${(out.stderr || out.stdout).trim().slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
