// Process one dead letter again, through the bot's own handlers and its exactly-once commit:
//   bun src/retry-dead-letter.ts <update_id>      (in the running app container; the toolkit's
//                                                  `node scripts/db.mts --retry <update_id>` runs it)
// It runs beside the server as a second SQLite writer (WAL, busy timeout), with the container's own
// environment. The update is either still a dead letter or processed once (commitRetry); a redelivery
// racing it is answered by whichever commits first. Telegram calls the handler makes are at least once,
// as for any update.
// stdout: one JSON line {update_id, result, error?}; the app's log lines go to stderr.
// Exit status: 0 processed; 1 failed again (still a dead letter, one more attempt); 2 usage or
// environment; 3 not a dead letter (none with that id, or processed meanwhile); 4 its update was not
// kept (dead-lettered before schema v4), so it cannot be retried; 5 the database schema is not this
// image's (the server migrates it, not this).
import { formatEnvErrors, parseEnv } from "./env.ts";
import { createLogger } from "./log.ts";
import { createStore, openDatabase, SCHEMA_VERSION, userVersion } from "./db.ts";
import { createBot, describeFailure } from "./bot.ts";
import { effectiveBotToken } from "./env.ts";

function out(o: Record<string, unknown>, code: number): never {
  console.log(JSON.stringify(o));
  process.exit(code);
}

const arg = process.argv[2] ?? "";
if (!/^\d{1,19}$/.test(arg) || !Number.isSafeInteger(Number(arg))) out({ result: "usage", error: `expected an update_id, got "${arg}"` }, 2);
const updateId = Number(arg);

const parsed = parseEnv(process.env);
if (!parsed.ok) out({ update_id: updateId, result: "usage", error: formatEnvErrors(parsed.errors) }, 2);
const env = parsed.env;
const log = createLogger(env.LOG_LEVEL, (l) => console.error(l));
const db = openDatabase(env.DB_PATH);
const version = userVersion(db);
if (version !== SCHEMA_VERSION) out({ update_id: updateId, result: "schema", error: `database schema ${version}, this image's ${SCHEMA_VERSION}` }, 5);
const store = createStore(db);

const row = store.deadLetter(updateId);
if (!row) out({ update_id: updateId, result: store.isProcessed(updateId) ? "already_processed" : "not_found" }, 3);
if (!row.update_json) out({ update_id: updateId, result: "no_update_kept" }, 4);

const bot = createBot({ env, store, log, retryDeadLetters: true });
try {
  if (!bot.isInited()) bot.botInfo = await bot.api.getMe();
  await bot.handleUpdate(JSON.parse(row.update_json as string));
} catch (err) {
  const inner = (err as { error?: unknown }).error ?? err;
  db.close();
  out({ update_id: updateId, result: "failed", error: describeFailure(inner, [effectiveBotToken(env), env.WEBHOOK_SECRET]) }, 1);
}
const processed = store.isProcessed(updateId) && !store.isDeadLetter(updateId);
db.close();
out({ update_id: updateId, result: processed ? "processed" : "already_processed" }, processed ? 0 : 3);
