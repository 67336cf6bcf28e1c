// A fake Telegram Bot API server for tests: the app (grammY) talks to it through TELEGRAM_API_ROOT,
// and it delivers queued updates to the app's webhook over real HTTPS, the way Telegram does.
//
// Behaviour follows Telegram's documentation (core.telegram.org/bots/api: setWebhook, getWebhookInfo,
// getUpdates) and the reference server tdlib/telegram-bot-api (Client.cpp, WebhookActor.cpp) for the
// exact wording of results and errors. Deliberate differences, all in favour of testability:
//   - webhook ports are not restricted unless `allowedPorts` is given, loopback/private IPs are allowed,
//     http:// webhooks only with `allowInsecureWebhook`;
//   - retry delays are configurable (Telegram: about 1 s doubling up to about a minute; a failed answer's
//     Retry-After header, whole seconds, replaces the delay, at most 3600 s, as Telegram does) and one bot's
//     updates are delivered strictly in update_id order, one at a time by default (Telegram keeps one
//     queue per chat and up to max_connections in flight);
//   - no setWebhook rate limit (Telegram answers 429 to a second setWebhook within one second).
// Only node: built-ins are used.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import net from 'node:net';
import dns from 'node:dns/promises';
import zlib from 'node:zlib';

export type Update = { update_id: number; [field: string]: unknown };
export type Chat = { id: number; type: string; [field: string]: unknown };
export type Message = {
  message_id: number;
  date: number;
  chat: Chat;
  from?: Record<string, unknown>;
  text?: string;
  [field: string]: unknown;
};

export type WebhookInfo = {
  url: string;
  has_custom_certificate: boolean;
  pending_update_count: number;
  last_error_date?: number;
  last_error_message?: string;
  max_connections?: number;
  ip_address?: string;
  allowed_updates?: string[];
};

export type ApiResponse =
  | { ok: true; result: unknown; description?: string }
  | { ok: false; error_code: number; description: string; parameters?: Record<string, unknown> };

export type ApiCall = {
  token: string;
  /** The method name as it appeared in the URL (Telegram matches it case-insensitively). */
  method: string;
  params: Record<string, unknown>;
  /** Date.now() when the request arrived. */
  at: number;
  httpMethod: string;
  /** Filled in when the answer is sent (long polls answer later). */
  status?: number;
  response?: ApiResponse;
  /** True when the call came as the body of a webhook response (Telegram executes those). */
  viaWebhookReply?: boolean;
};

export type Delivery = {
  token: string;
  update_id: number;
  url: string;
  /** HTTP status of the webhook's answer, or 'network error' when none came. */
  status: number | 'network error';
  ok: boolean;
  /** Telegram's wording of the failure, as getWebhookInfo.last_error_message shows it. */
  error?: string;
  /** 1 for the first attempt of this update, 2 for the first retry, ... */
  attempt: number;
  /** Date.now() when the attempt finished. */
  at: number;
  durationMs: number;
};

export type SentMessage = {
  chat_id: number | string;
  text: string;
  message_id: number;
  params: Record<string, unknown>;
  message: Message;
};

/** A file part of a multipart/form-data request. */
export class UploadedFile {
  readonly file_name: string;
  readonly mime_type: string;
  readonly content: Buffer;
  constructor(file_name: string, mime_type: string, content: Buffer) {
    this.file_name = file_name;
    this.mime_type = mime_type;
    this.content = content;
  }
  get size(): number {
    return this.content.length;
  }
  toJSON() {
    return { file_name: this.file_name, mime_type: this.mime_type, size: this.size };
  }
}

/** Throw this from a custom method handler to answer like Telegram: {ok:false,error_code,description}. */
export class BotApiError extends Error {
  readonly error_code: number;
  readonly description: string;
  readonly parameters?: Record<string, unknown>;
  constructor(error_code: number, description: string, parameters?: Record<string, unknown>) {
    super(description);
    this.name = 'BotApiError';
    this.error_code = error_code;
    this.description = description;
    if (parameters) this.parameters = parameters;
  }
}

export type MethodContext = { token: string; botId: number; api: FakeBotApi };
export type MethodHandler = (params: Record<string, unknown>, ctx: MethodContext) => unknown | Promise<unknown>;

export type FakeBotApiOptions = {
  /** Port to listen on; 0 or absent picks a free one. */
  port?: number;
  /** Default 0.0.0.0 so that containers reach it through host.docker.internal. */
  host?: string;
  /** How webhook hosts are reached, like curl --resolve: {"lazyflow.test:443": "127.0.0.1:34443"}. */
  resolve?: Record<string, string>;
  /** Extra trusted root(s), PEM, for webhook HTTPS; added to Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Delays between delivery attempts of one update; the last one repeats. */
  retryDelaysMs?: number[];
  /** Telegram allows 443, 80, 88 and 8443. Default "any" (tests use high ports). */
  allowedPorts?: number[] | 'any';
  /** Allow http:// webhook URLs (Telegram refuses them). Default false. */
  allowInsecureWebhook?: boolean;
  /** Give up on one delivery attempt after this long. Default 10 s. */
  deliveryTimeoutMs?: number;
  /** Deliveries in flight per bot (capped by the webhook's max_connections). Default 1: strict order. */
  deliveryConcurrency?: number;
  /** sendMessage to a chat the fake has not seen in an update answers "chat not found". Default false. */
  strictChats?: boolean;
  /** First update_id handed out per bot. Default 100000001. */
  firstUpdateId?: number;
  /** Give up resolving a webhook host name at setWebhook after this long. Default 5 s. */
  dnsTimeoutMs?: number;
  /** Extra or replacement methods, by name (case-insensitive). */
  methods?: Record<string, MethodHandler>;
  /**
   * How long an unconfirmed update is kept. Default 24 h, as Telegram's getUpdates documentation says
   * ("Incoming updates are stored on the server until the bot receives them either way, but they will
   * not be kept longer than 24 hours", core.telegram.org/bots/api#getting-updates).
   */
  pendingUpdateTtlMs?: number;
};

export type WaitOptions = { timeoutMs?: number; intervalMs?: number; message?: string };

export interface FakeBotApi {
  /** http://127.0.0.1:<port> — the API root for processes on the host. */
  readonly url: string;
  /** http://host.docker.internal:<port> — the API root for containers (compose adds host-gateway). */
  readonly dockerUrl: string;
  readonly port: number;
  /** Every Bot API call received, in arrival order. */
  readonly calls: ApiCall[];
  /** Every finished webhook delivery attempt, in completion order. */
  readonly deliveries: Delivery[];
  stop(): Promise<void>;
  /** Queue an update for the bot; assigns update_id (monotonic per bot) if missing and returns it. */
  queueUpdate(token: string, update: Partial<Update> & Record<string, unknown>): number;
  /** The same object getWebhookInfo returns. */
  webhookInfo(token: string): WebhookInfo;
  /** Updates not yet delivered (webhook) or not yet confirmed (getUpdates), in order. */
  pendingUpdates(token: string): Update[];
  /**
   * update_ids a poller confirmed, in the order it confirmed them: getUpdates with an offset above them
   * (a negative offset forgets the older ones, which counts too). Handing an update out does not confirm it.
   */
  confirmedUpdateIds(token: string): number[];
  /** Messages the bot sent with sendMessage (including sendMessage given as a webhook reply). */
  sentMessages(token: string): SentMessage[];
  /** Calls of one method (case-insensitive), optionally for one token. */
  callsTo(method: string, token?: string): ApiCall[];
  /** Make the next call(s) of a method fail like Telegram would, e.g. {error_code: 429, ...}. */
  failNext(token: string, method: string, error: { error_code: number; description: string; parameters?: Record<string, unknown> }, times?: number): void;
  /**
   * The user of this private chat blocked the bot: from now on every method sent to the chat
   * answers 403 "Forbidden: bot was blocked by the user", as Telegram does, until the end of the run.
   */
  blockChat(token: string, chatId: number): void;
  /** The user unblocked the bot again: methods sent to the chat succeed from now on. */
  unblockChat(token: string, chatId: number): void;
  /** Add or change a --resolve style mapping after start. */
  resolve(hostPort: string, target: string): void;
  /** Trust another root for webhook HTTPS after start (e.g. an ACME server's root fetched later). */
  trustCa(pem: string | Buffer): void;
  /** Polls predicate until it returns a truthy value, which it returns. */
  waitFor<T>(predicate: () => T | Promise<T>, opts?: WaitOptions): Promise<T>;
  /** Waits until the bot has no pending update (pending_update_count 0). */
  waitForDrained(token: string, timeoutMs?: number): Promise<void>;
}

export const BOT_TOKEN_RE = /^\d+:[A-Za-z0-9_-]{30,}$/;

/** Update types in the order of the Update object's fields (getWebhookInfo lists them in this order). */
export const UPDATE_TYPES = [
  'message',
  'edited_message',
  'channel_post',
  'edited_channel_post',
  'business_connection',
  'business_message',
  'edited_business_message',
  'deleted_business_messages',
  'message_reaction',
  'message_reaction_count',
  'inline_query',
  'chosen_inline_result',
  'callback_query',
  'shipping_query',
  'pre_checkout_query',
  'purchased_paid_media',
  'poll',
  'poll_answer',
  'my_chat_member',
  'chat_member',
  'chat_join_request',
  'chat_boost',
  'removed_chat_boost',
] as const;
/** Without allowed_updates Telegram sends every type except these. */
const NOT_BY_DEFAULT = new Set(['chat_member', 'message_reaction', 'message_reaction_count']);

const MAX_BODY = 60 * 1024 * 1024;
const MAX_REPLY_BODY = 1024 * 1024;
const LONG_POLL_MAX_S = 50;
const unixNow = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Hook = {
  url: string;
  parsed: URL;
  hostname: string;
  port: number;
  secret: string;
  maxConnections: number;
  fixedIp: string;
  resolvedIp: string;
  customCert?: Buffer;
  agent: http.Agent;
};

type Queued = { update: Update; attempts: number; notBefore: number; inflight: boolean; queuedAt: number };

/** A pending long poll: wake() answers with what is queued now, cancel() answers with an error. */
type Poll = { wake: () => void; cancel: (r: ApiResponse) => void };

type BotState = {
  token: string;
  id: number;
  queue: Queued[];
  nextUpdateId: number;
  hook?: Hook;
  /** null: Telegram's default set. */
  allowedUpdates: string[] | null;
  lastErrorDate: number;
  lastErrorMessage: string;
  generation: number;
  timer?: NodeJS.Timeout;
  inflight: number;
  requests: Set<http.ClientRequest>;
  poll?: Poll;
  /** update_ids confirmed by getUpdates offsets, in order (confirmedUpdateIds). */
  confirmed: number[];
  chats: Map<string, Chat>;
  nextMessageId: Map<number, number>;
  messages: Map<string, Message>;
  sent: SentMessage[];
  failures: Map<string, Array<{ error_code: number; description: string; parameters?: Record<string, unknown> }>>;
  /** Chats whose user blocked the bot (blockChat). */
  blocked: Set<string>;
  commands: unknown[];
  menuButton: unknown;
};

const bad = (what: string) => new BotApiError(400, `Bad Request: ${what}`);
/** Result with a description, like {"ok":true,"result":true,"description":"Webhook was set"}. */
class Described {
  readonly result: unknown;
  readonly description: string;
  constructor(result: unknown, description: string) {
    this.result = result;
    this.description = description;
  }
}

// --- parameter access: Telegram treats every parameter as a string, JSON-serialized when complex ---

function str(p: Record<string, unknown>, k: string): string | undefined {
  const v = p[k];
  if (v === undefined || v === null || v instanceof UploadedFile) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function bool(p: Record<string, unknown>, k: string): boolean {
  const v = p[k];
  if (typeof v === 'boolean') return v;
  const s = str(p, k)?.toLowerCase();
  return s === 'true' || s === '1' || s === 'yes';
}

function int(p: Record<string, unknown>, k: string, dflt: number, min = -Infinity, max = Infinity): number {
  const s = str(p, k);
  if (s === undefined || s === '') return dflt;
  const n = Number.parseInt(s, 10);
  return Math.min(max, Math.max(min, Number.isNaN(n) ? 0 : n));
}

function json(p: Record<string, unknown>, k: string): unknown {
  const v = p[k];
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
}

// --- helpers ---

function splitHostPort(s: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) return { host: s, port: defaultPort };
  return { host: m[1], port: m[2] ? Number(m[2]) : defaultPort };
}

function effectivePort(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'http:' ? 80 : 443;
}

function updateType(u: Update): string | undefined {
  return Object.keys(u).find((k) => k !== 'update_id');
}

function asPem(x: string | Buffer): string {
  return Buffer.isBuffer(x) ? x.toString('utf8') : x;
}

const CERT_VERIFY_CODES = /CERT|SIGNATURE|ALTNAME|ISSUER|SELF_SIGNED|VERIFY/;

/** Telegram's wording for a delivery that got no HTTP answer (as seen in getWebhookInfo). */
function describeNetworkError(err: NodeJS.ErrnoException & { reason?: string }): string {
  const code = err.code ?? '';
  if (err instanceof DeliveryTimeout) return err.message;
  switch (code) {
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return err.message === 'socket hang up' ? 'Webhook connection closed' : 'Connection reset by peer';
    case 'ETIMEDOUT':
      return 'Connection timed out';
    case 'EHOSTUNREACH':
      return 'No route to host';
    case 'ENETUNREACH':
      return 'Network is unreachable';
    case 'ENOTFOUND':
      return 'Failed to resolve host: Name or service not known';
    case 'EAI_AGAIN':
      return 'Failed to resolve host: Temporary failure in name resolution';
  }
  if (CERT_VERIFY_CODES.test(code)) return 'SSL error {error:0A000086:SSL routines::certificate verify failed}';
  const ssl = /error:([0-9A-Fa-f]{8}):SSL routines:[^:]*:([^:\n]+)/.exec(err.message);
  if (ssl) return `SSL error {error:${ssl[1].toUpperCase()}:SSL routines::${ssl[2]}}`;
  if (code.startsWith('ERR_SSL_')) return `SSL error {${err.reason ?? code}}`;
  return err.message || code || 'Unknown error';
}

class DeliveryTimeout extends Error {}
const ABORTED = new Error('delivery cancelled by the fake');

type Outcome = {
  status: number | 'network error';
  ok: boolean;
  error?: string;
  aborted?: boolean;
  body?: Buffer;
  contentType?: string;
  /** a failed answer's Retry-After, in seconds (tdlib's HttpQuery::get_retry_after: a positive integer) */
  retryAfterS?: number;
};

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new BotApiError(413, 'Request Entity Too Large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function parseParams(body: Buffer, contentType: string, query: URLSearchParams): Promise<Record<string, unknown>> {
  const params: Record<string, unknown> = Object.fromEntries(query);
  const ct = contentType.toLowerCase();
  if (body.length === 0) return params;
  if (ct.startsWith('application/json')) {
    let v: unknown;
    try {
      v = JSON.parse(body.toString('utf8'));
    } catch {
      throw bad("can't parse JSON object");
    }
    if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(params, v);
    else throw bad("can't parse JSON object");
  } else if (ct.startsWith('application/x-www-form-urlencoded')) {
    Object.assign(params, Object.fromEntries(new URLSearchParams(body.toString('utf8'))));
  } else if (ct.startsWith('multipart/form-data')) {
    let form: FormData;
    try {
      form = await new Response(new Uint8Array(body), { headers: { 'content-type': contentType } }).formData();
    } catch {
      throw bad("can't parse multipart/form-data");
    }
    for (const [k, v] of form) {
      if (typeof v === 'string') params[k] = v;
      else params[k] = new UploadedFile(v.name, v.type, Buffer.from(await v.arrayBuffer()));
    }
  }
  return params;
}

export async function startFakeBotApi(opts: FakeBotApiOptions = {}): Promise<FakeBotApi> {
  const retryDelays = opts.retryDelaysMs?.length ? [...opts.retryDelaysMs] : [200, 500, 1000, 2000, 5000];
  const allowedPorts = opts.allowedPorts ?? 'any';
  const deliveryTimeoutMs = opts.deliveryTimeoutMs ?? 10_000;
  const concurrency = Math.max(1, opts.deliveryConcurrency ?? 1);
  const firstUpdateId = opts.firstUpdateId ?? 100_000_001;
  const dnsTimeoutMs = opts.dnsTimeoutMs ?? 5_000;
  const pendingUpdateTtlMs = opts.pendingUpdateTtlMs ?? 24 * 3600_000;
  const resolveMap = new Map<string, string>();
  for (const [k, v] of Object.entries(opts.resolve ?? {})) resolveMap.set(k.toLowerCase(), v);
  const extraCa: string[] = [];
  const addCa = (ca: FakeBotApiOptions['ca']) => {
    if (!ca) return;
    for (const c of Array.isArray(ca) ? ca : [ca]) if (asPem(c).trim()) extraCa.push(asPem(c));
  };
  addCa(opts.ca);

  const bots = new Map<string, BotState>();
  const calls: ApiCall[] = [];
  const deliveries: Delivery[] = [];
  let stopped = false;
  const customMethods = new Map<string, MethodHandler>();
  for (const [k, v] of Object.entries(opts.methods ?? {})) customMethods.set(k.toLowerCase(), v);

  function bot(token: string): BotState {
    let b = bots.get(token);
    if (!b) {
      b = {
        token,
        id: Number(token.slice(0, token.indexOf(':'))),
        queue: [],
        nextUpdateId: firstUpdateId,
        allowedUpdates: null,
        lastErrorDate: 0,
        lastErrorMessage: '',
        generation: 0,
        inflight: 0,
        requests: new Set(),
        confirmed: [],
        chats: new Map(),
        nextMessageId: new Map(),
        messages: new Map(),
        sent: [],
        failures: new Map(),
        blocked: new Set(),
        commands: [],
        menuButton: { type: 'default' },
      };
      bots.set(token, b);
    }
    return b;
  }

  function checkToken(token: string): void {
    if (!BOT_TOKEN_RE.test(token)) throw new Error(`not a bot token: ${JSON.stringify(token)}`);
  }

  function botUser(b: BotState) {
    return { id: b.id, is_bot: true, first_name: 'Fake Bot', username: `${b.id}_fake_bot` };
  }

  function info(b: BotState): WebhookInfo {
    expire(b);
    const out: WebhookInfo = {
      url: b.hook?.url ?? '',
      has_custom_certificate: !!b.hook?.customCert,
      pending_update_count: b.queue.length,
    };
    if (b.lastErrorDate > 0) {
      out.last_error_date = b.lastErrorDate;
      out.last_error_message = b.lastErrorMessage;
    }
    if (b.hook) {
      out.max_connections = b.hook.maxConnections;
      out.ip_address = b.hook.fixedIp || b.hook.resolvedIp || '<unknown>';
    }
    if (b.allowedUpdates) out.allowed_updates = [...b.allowedUpdates];
    return out;
  }

  /** Telegram keeps an unconfirmed update at most 24 h (pendingUpdateTtlMs). */
  function expire(b: BotState): void {
    const oldest = Date.now() - pendingUpdateTtlMs;
    if (b.queue.some((q) => q.queuedAt < oldest && !q.inflight)) b.queue = b.queue.filter((q) => q.queuedAt >= oldest || q.inflight);
  }

  function isAllowed(b: BotState, type: string | undefined): boolean {
    if (!type) return true;
    return b.allowedUpdates ? b.allowedUpdates.includes(type) : !NOT_BY_DEFAULT.has(type);
  }

  /** allowed_updates: a JSON array of type names; absent keeps the previous setting, [] means the default. */
  function updateAllowed(b: BotState, p: Record<string, unknown>): void {
    if (p.allowed_updates === undefined) return;
    const v = json(p, 'allowed_updates');
    if (!Array.isArray(v)) return;
    const wanted = new Set(v.filter((x): x is string => typeof x === 'string').map((x) => x.toLowerCase()));
    const list = UPDATE_TYPES.filter((t) => wanted.has(t));
    if (list.length === 0) {
      b.allowedUpdates = null;
      return;
    }
    const isDefault = list.length === UPDATE_TYPES.length - NOT_BY_DEFAULT.size && list.every((t) => !NOT_BY_DEFAULT.has(t));
    b.allowedUpdates = isDefault ? null : list;
  }

  // --- chats and messages ---

  function learnChats(b: BotState, value: unknown, depth = 0): void {
    if (!value || typeof value !== 'object' || depth > 6) return;
    const o = value as Record<string, unknown>;
    const chat = o.chat as Chat | undefined;
    if (chat && typeof chat === 'object' && typeof chat.id === 'number' && typeof chat.type === 'string') {
      b.chats.set(String(chat.id), { ...chat });
      if (typeof chat.username === 'string') b.chats.set(`@${chat.username.toLowerCase()}`, { ...chat });
      if (typeof o.message_id === 'number') {
        const next = b.nextMessageId.get(chat.id) ?? 1;
        if (o.message_id >= next) b.nextMessageId.set(chat.id, o.message_id + 1);
        b.messages.set(`${chat.id}:${o.message_id}`, o as unknown as Message);
      }
    }
    const from = o.from as Record<string, unknown> | undefined;
    if (from && typeof from.id === 'number' && from.is_bot === false && !b.chats.has(String(from.id))) {
      const c: Chat = { id: from.id, type: 'private', first_name: from.first_name };
      if (from.last_name !== undefined) c.last_name = from.last_name;
      if (from.username !== undefined) c.username = from.username;
      b.chats.set(String(from.id), c);
    }
    for (const v of Object.values(o)) if (v && typeof v === 'object') learnChats(b, v, depth + 1);
  }

  function findChat(b: BotState, chatId: string): Chat {
    const known = b.chats.get(chatId.startsWith('@') ? chatId.toLowerCase() : chatId);
    if (known) return { ...known };
    if (opts.strictChats || !/^-?\d{1,19}$/.test(chatId)) throw bad('chat not found');
    const id = Number(chatId);
    if (id === 0) throw bad('chat not found');
    if (id > 0) return { id, type: 'private', first_name: 'User' };
    return id <= -1_000_000_000_000 ? { id, type: 'supergroup', title: 'Group' } : { id, type: 'group', title: 'Group' };
  }

  function takeMessageId(b: BotState, chatId: number): number {
    const n = b.nextMessageId.get(chatId) ?? 1;
    b.nextMessageId.set(chatId, n + 1);
    return n;
  }

  function chatIdOf(p: Record<string, unknown>): string {
    const s = str(p, 'chat_id') ?? '';
    if (!s) throw bad('chat_id is empty');
    return s;
  }

  // --- methods ---

  const methods = new Map<string, (b: BotState, p: Record<string, unknown>, ctx: { onAbort(fn: () => void): void }) => unknown>();

  methods.set('getme', (b) => ({
    ...botUser(b),
    can_join_groups: true,
    can_read_all_group_messages: false,
    supports_inline_queries: false,
    can_connect_to_business: false,
    has_main_web_app: false,
  }));

  methods.set('setwebhook', (b, p) => setWebhook(b, p, false));
  methods.set('deletewebhook', (b, p) => setWebhook(b, p, true));
  methods.set('getwebhookinfo', (b) => info(b));

  methods.set('getupdates', (b, p, ctx) => {
    if (b.hook) {
      throw new BotApiError(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      );
    }
    const offset = int(p, 'offset', 0);
    const limit = int(p, 'limit', 100, 1, 100);
    const timeout = int(p, 'timeout', 0, 0, LONG_POLL_MAX_S);
    updateAllowed(b, p);
    b.poll?.cancel({
      ok: false,
      error_code: 409,
      description: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
    });
    // An update is confirmed (forgotten) only by an offset above its id; a negative offset keeps the
    // last -offset updates and forgets the rest (core.telegram.org/bots/api#getupdates, "offset").
    expire(b);
    // (the queue is kept in update_id order)
    const above = b.queue.findIndex((q) => q.update.update_id >= offset);
    const forget = offset > 0 ? (above < 0 ? b.queue.length : above) : offset < 0 ? Math.max(0, b.queue.length + offset) : 0;
    b.confirmed.push(...b.queue.splice(0, forget).map((q) => q.update.update_id));
    const take = () => {
      expire(b);
      return b.queue.slice(0, limit).map((q) => structuredClone(q.update));
    };
    const now = take();
    if (now.length > 0 || timeout === 0 || stopped) return now;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => done({ ok: true, result: take() }), timeout * 1000);
      const poll: Poll = { wake: () => done({ ok: true, result: take() }), cancel: (r) => done(r) };
      function done(r: ApiResponse) {
        clearTimeout(timer);
        if (b.poll === poll) b.poll = undefined;
        if (r.ok) resolve(r.result);
        else reject(new BotApiError(r.error_code, r.description));
      }
      b.poll = poll;
      ctx.onAbort(() => done({ ok: true, result: [] }));
    });
  });

  methods.set('sendmessage', (b, p) => {
    const text = str(p, 'text') ?? '';
    if (text.trim() === '') throw bad('message text is empty');
    if (text.length > 4096) throw bad('message is too long');
    const chat = findChat(b, chatIdOf(p));
    const message: Message = { message_id: takeMessageId(b, chat.id), from: botUser(b), chat, date: unixNow(), text };
    const entities = json(p, 'entities');
    if (Array.isArray(entities) && entities.length) message.entities = entities;
    const markup = json(p, 'reply_markup') as Record<string, unknown> | undefined;
    if (markup && typeof markup === 'object' && Array.isArray(markup.inline_keyboard)) message.reply_markup = markup;
    b.messages.set(`${chat.id}:${message.message_id}`, message);
    const raw = p.chat_id;
    b.sent.push({
      chat_id: typeof raw === 'number' ? raw : /^-?\d+$/.test(String(raw)) ? Number(raw) : String(raw),
      text,
      message_id: message.message_id,
      params: p,
      message: structuredClone(message),
    });
    return message;
  });

  methods.set('editmessagetext', (b, p) => {
    const text = str(p, 'text') ?? '';
    if (text.trim() === '') throw bad('message text is empty');
    if (p.inline_message_id !== undefined) return true;
    const chat = findChat(b, chatIdOf(p));
    const msg = b.messages.get(`${chat.id}:${int(p, 'message_id', 0)}`);
    if (!msg || msg.from?.id !== b.id) throw bad('message to edit not found');
    const markup = json(p, 'reply_markup');
    if (msg.text === text && JSON.stringify(markup ?? null) === JSON.stringify(msg.reply_markup ?? null)) {
      throw bad(
        'message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
      );
    }
    msg.text = text;
    msg.edit_date = unixNow();
    if (markup) msg.reply_markup = markup;
    return structuredClone(msg);
  });

  methods.set('deletemessage', (b, p) => {
    const chat = findChat(b, chatIdOf(p));
    const key = `${chat.id}:${int(p, 'message_id', 0)}`;
    if (!b.messages.delete(key)) throw bad('message to delete not found');
    return true;
  });

  methods.set('sendchataction', (b, p) => {
    findChat(b, chatIdOf(p));
    if (!str(p, 'action')) throw bad('action is empty');
    return true;
  });
  methods.set('answercallbackquery', (_b, p) => {
    if (!str(p, 'callback_query_id')) throw bad('query is too old and response timeout expired or query ID is invalid');
    return true;
  });
  methods.set('setmycommands', (b, p) => {
    const v = json(p, 'commands');
    if (!Array.isArray(v)) throw bad("can't parse commands JSON object");
    b.commands = v;
    return true;
  });
  methods.set('getmycommands', (b) => structuredClone(b.commands));
  methods.set('deletemycommands', (b) => {
    b.commands = [];
    return true;
  });
  methods.set('setchatmenubutton', (b, p) => {
    const v = json(p, 'menu_button');
    b.menuButton = v && typeof v === 'object' ? v : { type: 'default' };
    return true;
  });
  methods.set('getchatmenubutton', (b) => structuredClone(b.menuButton));
  for (const m of ['setmydescription', 'setmyshortdescription', 'setmyname', 'close', 'logout']) methods.set(m, () => true);

  async function setWebhook(b: BotState, p: Record<string, unknown>, isDelete: boolean): Promise<Described> {
    const newUrl = isDelete ? '' : (str(p, 'url') ?? '');
    const drop = bool(p, 'drop_pending_updates');
    const cert = p.certificate instanceof UploadedFile ? p.certificate : undefined;
    const maxConnections = newUrl ? int(p, 'max_connections', 40, 1, 100) : 0;
    const fixedIp = newUrl ? (str(p, 'ip_address') ?? '') : '';
    const secret = newUrl ? (str(p, 'secret_token') ?? '') : '';
    const h = b.hook;
    if (
      (h?.url ?? '') === newUrl &&
      !h?.customCert &&
      !cert &&
      (h?.maxConnections ?? 0) === maxConnections &&
      (h?.fixedIp ?? '') === fixedIp &&
      (h?.secret ?? '') === secret &&
      !drop
    ) {
      updateAllowed(b, p);
      return new Described(true, newUrl ? 'Webhook is already set' : 'Webhook is already deleted');
    }
    // As in Telegram: the old webhook is closed first (its error state goes with it), then the queue
    // is dropped if asked, then the new URL is checked; a refused URL leaves no webhook behind.
    const wasSet = !!h;
    if (h) closeHook(b);
    if (newUrl) b.poll?.cancel({ ok: false, error_code: 409, description: 'Conflict: terminated by setWebhook request' });
    if (drop) b.queue = [];
    if (!newUrl) return new Described(true, wasSet ? 'Webhook was deleted' : 'Webhook is already deleted');

    let parsed: URL;
    try {
      parsed = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(newUrl) ? newUrl : `https://${newUrl}`);
    } catch {
      throw bad('invalid webhook URL specified');
    }
    if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || !parsed.hostname) {
      throw bad('invalid webhook URL specified');
    }
    if (Buffer.byteLength(secret) > 256) throw bad('secret token is too long');
    if (!/^[A-Za-z0-9_-]*$/.test(secret)) throw bad('secret token contains unallowed characters');
    updateAllowed(b, p);
    if (parsed.protocol === 'http:' && !opts.allowInsecureWebhook) {
      throw bad('bad webhook: An HTTPS URL must be provided for webhook');
    }
    const port = effectivePort(parsed);
    if (allowedPorts !== 'any' && !allowedPorts.includes(port)) {
      throw bad('bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443');
    }
    if (fixedIp && !net.isIP(fixedIp)) throw bad('bad webhook: Invalid IP address specified');
    const hostname = parsed.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    let resolvedIp = '';
    if (!fixedIp) {
      try {
        resolvedIp = await resolveHost(hostname, port);
      } catch {
        throw bad('bad webhook: Failed to resolve host: Name or service not known');
      }
    }
    if (stopped) throw new BotApiError(500, 'Internal Server Error: server is stopping');
    if (b.hook) closeHook(b); // a concurrent setWebhook won the race: the last one wins
    const agentOpts = { keepAlive: true, maxSockets: Math.min(concurrency, maxConnections) };
    b.hook = {
      url: newUrl,
      parsed,
      hostname,
      port,
      secret,
      maxConnections,
      fixedIp,
      resolvedIp,
      customCert: cert?.content,
      agent: parsed.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts),
    };
    b.generation++;
    pump(b);
    return new Described(true, 'Webhook was set');
  }

  async function resolveHost(hostname: string, port: number): Promise<string> {
    const mapped = resolveMap.get(`${hostname}:${port}`);
    const host = mapped ? splitHostPort(mapped, port).host : hostname;
    if (net.isIP(host)) return host;
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        dns.lookup(host),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('DNS timeout')), dnsTimeoutMs);
        }),
      ]);
      return r.address;
    } finally {
      clearTimeout(timer);
    }
  }

  function closeHook(b: BotState): void {
    const h = b.hook;
    if (!h) return;
    b.hook = undefined;
    b.generation++;
    b.lastErrorDate = 0;
    b.lastErrorMessage = '';
    clearTimeout(b.timer);
    b.timer = undefined;
    for (const r of b.requests) r.destroy(ABORTED);
    h.agent.destroy();
  }

  // --- delivery ---

  function delayFor(attempts: number): number {
    return retryDelays[Math.min(attempts, retryDelays.length) - 1];
  }

  function pump(b: BotState): void {
    if (stopped || !b.hook) return;
    clearTimeout(b.timer);
    b.timer = undefined;
    expire(b);
    const limit = Math.min(concurrency, b.hook.maxConnections);
    const now = Date.now();
    let wakeAt = Infinity;
    for (const q of b.queue) {
      if (b.inflight >= limit) break;
      if (q.inflight) continue;
      if (q.notBefore > now) {
        wakeAt = Math.min(wakeAt, q.notBefore);
        if (limit === 1) break; // strict order: nothing overtakes a waiting update
        continue;
      }
      deliver(b, q);
    }
    if (wakeAt < Infinity && b.inflight < limit) b.timer = setTimeout(() => pump(b), wakeAt - now);
  }

  function deliver(b: BotState, q: Queued): void {
    const hook = b.hook!;
    const generation = b.generation;
    q.inflight = true;
    q.attempts++;
    b.inflight++;
    const attempt = q.attempts;
    const started = Date.now();
    void post(b, hook, q.update)
      .catch((err: Error): Outcome => ({ status: 'network error', ok: false, error: err.message }))
      .then((o) => {
        b.inflight--;
        q.inflight = false;
        if (stopped) return;
        if (o.aborted) return pump(b); // cancelled by a webhook change: the update waits for the next hook
        deliveries.push({
          token: b.token,
          update_id: q.update.update_id,
          url: hook.url,
          status: o.status,
          ok: o.ok,
          ...(o.error ? { error: o.error } : {}),
          attempt,
          at: Date.now(),
          durationMs: Date.now() - started,
        });
        if (o.ok) {
          b.queue = b.queue.filter((x) => x !== q);
          if (o.body) void webhookReply(b, o.body, o.contentType ?? '');
        } else if (generation === b.generation) {
          b.lastErrorDate = unixNow();
          b.lastErrorMessage = o.error ?? 'Unknown error';
          // Telegram waits what Retry-After asks (clamped to an hour) instead of its own backoff
          q.notBefore = Date.now() + (o.retryAfterS ? Math.min(o.retryAfterS, 3600) * 1000 : delayFor(q.attempts));
        }
        pump(b);
      })
      .catch(() => {});
  }

  function post(b: BotState, hook: Hook, update: Update): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const settle = (o: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        b.requests.delete(req);
        resolve(o);
      };
      const body = Buffer.from(JSON.stringify(update));
      const u = hook.parsed;
      const mapped = resolveMap.get(`${hook.hostname}:${hook.port}`);
      const target = mapped ? splitHostPort(mapped, hook.port) : { host: hook.fixedIp || hook.hostname, port: hook.port };
      const headers: Record<string, string | number> = {
        Host: u.host,
        'Content-Type': 'application/json',
        'Content-Length': body.length,
        Connection: 'keep-alive',
        'Accept-Encoding': 'gzip, deflate',
      };
      if (u.username) {
        const userinfo = `${decodeURIComponent(u.username)}${u.password ? `:${decodeURIComponent(u.password)}` : ''}`;
        headers.Authorization = `Basic ${Buffer.from(userinfo).toString('base64')}`;
      }
      if (hook.secret) headers['X-Telegram-Bot-Api-Secret-Token'] = hook.secret;
      const common = {
        host: target.host,
        port: target.port,
        method: 'POST',
        path: `${u.pathname}${u.search}`,
        headers,
        agent: hook.agent,
      };
      const req =
        u.protocol === 'https:'
          ? https.request({
              ...common,
              servername: net.isIP(hook.hostname) ? undefined : hook.hostname,
              ca: [...tls.rootCertificates, ...extraCa, ...(hook.customCert ? [hook.customCert.toString('utf8')] : [])],
              // Verify against the URL's host even when connecting to a --resolve'd address.
              checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(hook.hostname, cert),
            })
          : http.request(common);
      b.requests.add(req);
      let connected = false;
      req.on('socket', (s: net.Socket) => {
        if (!s.connecting) connected = true;
        else s.once('connect', () => (connected = true));
      });
      const timer = setTimeout(() => {
        req.destroy(new DeliveryTimeout(connected ? 'Read timeout expired' : 'Connection timed out'));
      }, deliveryTimeoutMs);
      req.on('error', (err) => {
        settle(err === ABORTED ? { status: 'network error', ok: false, aborted: true } : { status: 'network error', ok: false, error: describeNetworkError(err) });
      });
      req.on('response', (res) => {
        const code = res.statusCode ?? 0;
        const ok = code >= 200 && code <= 299;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_REPLY_BODY) chunks.push(c);
        });
        res.on('error', (err) => settle({ status: 'network error', ok: false, error: describeNetworkError(err) }));
        res.on('end', () => {
          let replyBody = Buffer.concat(chunks);
          try {
            const enc = String(res.headers['content-encoding'] ?? '').toLowerCase();
            if (enc === 'gzip') replyBody = zlib.gunzipSync(replyBody);
            else if (enc === 'deflate') replyBody = zlib.inflateSync(replyBody);
          } catch {
            replyBody = Buffer.alloc(0);
          }
          settle({
            status: code,
            ok,
            error: ok ? undefined : `Wrong response from the webhook: ${code} ${res.statusMessage || http.STATUS_CODES[code] || ''}`.trimEnd(),
            body: replyBody,
            contentType: String(res.headers['content-type'] ?? ''),
            ...(!ok && /^\d+$/.test(String(res.headers['retry-after'] ?? '').trim()) && Number(res.headers['retry-after']) > 0 ? { retryAfterS: Number(res.headers['retry-after']) } : {}),
          });
        });
      });
      req.end(body);
    });
  }

  /** Telegram executes a method given in the body of a 2xx webhook answer (except get*, setWebhook, ...). */
  async function webhookReply(b: BotState, body: Buffer, contentType: string): Promise<void> {
    if (body.length === 0) return;
    let params: Record<string, unknown>;
    try {
      params = await parseParams(body, contentType || 'application/json', new URLSearchParams());
    } catch {
      return;
    }
    const method = str(params, 'method') ?? '';
    const lower = method.toLowerCase();
    if (!lower || ['deletewebhook', 'setwebhook', 'close', 'logout'].includes(lower) || lower.startsWith('get')) return;
    const { method: _m, ...rest } = params;
    await invoke(b, method, rest, 'WEBHOOK-REPLY', true, { onAbort() {} });
  }

  async function invoke(
    b: BotState,
    method: string,
    params: Record<string, unknown>,
    httpMethod: string,
    viaWebhookReply: boolean,
    ctx: { onAbort(fn: () => void): void },
  ): Promise<{ status: number; response: ApiResponse }> {
    const call: ApiCall = { token: b.token, method, params, at: Date.now(), httpMethod };
    if (viaWebhookReply) call.viaWebhookReply = true;
    calls.push(call);
    const lower = method.toLowerCase();
    let status = 200;
    let response: ApiResponse;
    try {
      const custom = customMethods.get(lower);
      const builtin = methods.get(lower);
      if (!custom && !builtin) throw new BotApiError(404, 'Not Found');
      const injected = b.failures.get(lower);
      if (injected?.length) {
        const f = injected.shift()!;
        throw new BotApiError(f.error_code, f.description, f.parameters);
      }
      if (params.chat_id !== undefined && b.blocked.has(String(params.chat_id)) && lower !== 'getchat') {
        throw new BotApiError(403, 'Forbidden: bot was blocked by the user');
      }
      const result = custom ? await custom(params, { token: b.token, botId: b.id, api }) : await builtin!(b, params, ctx);
      response = result instanceof Described ? { ok: true, result: result.result, description: result.description } : { ok: true, result };
    } catch (e) {
      const err = e instanceof BotApiError ? e : new BotApiError(500, `Internal Server Error: ${(e as Error)?.message ?? e}`);
      status = err.error_code;
      response = { ok: false, error_code: err.error_code, description: err.description };
      if (err.parameters) response.parameters = err.parameters;
    }
    call.status = status;
    call.response = response;
    return { status, response };
  }

  function send(res: http.ServerResponse, status: number, body: unknown): void {
    if (res.headersSent || res.destroyed || res.writableEnded) return;
    const s = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s) });
    res.end(s);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://fake');
    const m = /^\/bot([^/]*)\/([^/]*)$/.exec(u.pathname);
    if (!m) {
      req.resume();
      return send(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    }
    let token: string;
    try {
      token = decodeURIComponent(m[1]);
    } catch {
      token = m[1];
    }
    if (!BOT_TOKEN_RE.test(token)) {
      req.resume();
      return send(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    }
    let params: Record<string, unknown>;
    try {
      params = await parseParams(await readBody(req), String(req.headers['content-type'] ?? ''), u.searchParams);
    } catch (e) {
      const err = e instanceof BotApiError ? e : bad('invalid request');
      return send(res, err.error_code, { ok: false, error_code: err.error_code, description: err.description });
    }
    const abortFns: Array<() => void> = [];
    res.on('close', () => {
      if (!res.writableFinished) for (const fn of abortFns) fn();
    });
    const { status, response } = await invoke(bot(token), m[2], params, req.method ?? 'GET', false, {
      onAbort: (fn) => abortFns.push(fn),
    });
    send(res, status, response);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      send(res, 500, { ok: false, error_code: 500, description: `Internal Server Error: ${(e as Error)?.message ?? e}` });
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  async function waitFor<T>(predicate: () => T | Promise<T>, o: WaitOptions = {}): Promise<T> {
    const timeoutMs = o.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await predicate();
      if (v) return v;
      if (Date.now() >= deadline) throw new Error(`waitFor timed out after ${timeoutMs} ms${o.message ? `: ${o.message}` : ''}`);
      await sleep(o.intervalMs ?? 20);
    }
  }

  const api: FakeBotApi = {
    url: `http://127.0.0.1:${port}`,
    dockerUrl: `http://host.docker.internal:${port}`,
    port,
    calls,
    deliveries,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const b of bots.values()) {
        clearTimeout(b.timer);
        b.timer = undefined;
        b.poll?.wake();
        for (const r of b.requests) r.destroy(ABORTED);
        b.hook?.agent.destroy();
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    queueUpdate(token, update) {
      checkToken(token);
      const b = bot(token);
      const { update_id: given, ...rest } = structuredClone(update) as Record<string, unknown>;
      let id: number;
      if (given === undefined) id = b.nextUpdateId;
      else if (typeof given === 'number' && Number.isSafeInteger(given) && given > 0) id = given;
      else throw new Error(`update_id must be a positive integer, got ${JSON.stringify(given)}`);
      if (b.queue.some((q) => q.update.update_id === id)) throw new Error(`update ${id} is already queued`);
      b.nextUpdateId = Math.max(b.nextUpdateId, id + 1);
      const u: Update = { update_id: id, ...rest };
      learnChats(b, u);
      if (!isAllowed(b, updateType(u))) return id; // Telegram does not even queue updates the bot did not ask for
      const at = b.queue.findIndex((q) => q.update.update_id > id);
      const entry: Queued = { update: u, attempts: 0, notBefore: 0, inflight: false, queuedAt: Date.now() };
      if (at < 0) b.queue.push(entry);
      else b.queue.splice(at, 0, entry);
      b.poll?.wake();
      pump(b);
      return id;
    },
    webhookInfo(token) {
      checkToken(token);
      return info(bot(token));
    },
    pendingUpdates(token) {
      checkToken(token);
      expire(bot(token));
      return bot(token).queue.map((q) => structuredClone(q.update));
    },
    confirmedUpdateIds(token) {
      checkToken(token);
      return [...bot(token).confirmed];
    },
    sentMessages(token) {
      checkToken(token);
      return bot(token).sent.map((s) => ({ ...s, message: structuredClone(s.message) }));
    },
    callsTo(method, token) {
      const lower = method.toLowerCase();
      return calls.filter((c) => c.method.toLowerCase() === lower && (token === undefined || c.token === token));
    },
    failNext(token, method, error, times = 1) {
      checkToken(token);
      const b = bot(token);
      const list = b.failures.get(method.toLowerCase()) ?? [];
      for (let i = 0; i < times; i++) list.push({ ...error });
      b.failures.set(method.toLowerCase(), list);
    },
    blockChat(token, chatId) {
      checkToken(token);
      bot(token).blocked.add(String(chatId));
    },
    unblockChat(token, chatId) {
      checkToken(token);
      bot(token).blocked.delete(String(chatId));
    },
    resolve(hostPort, target) {
      resolveMap.set(hostPort.toLowerCase(), target);
    },
    trustCa(pem) {
      addCa(pem);
      // New connections must be verified with the new roots: drop idle kept-alive ones.
      for (const b of bots.values()) {
        for (const list of Object.values(b.hook?.agent.freeSockets ?? {})) for (const s of list ?? []) s.destroy();
      }
    },
    waitFor,
    async waitForDrained(token, timeoutMs = 10_000) {
      checkToken(token);
      const b = bot(token);
      await waitFor(() => b.queue.length === 0, {
        timeoutMs,
        message: `bot ${b.id} still has ${b.queue.length} pending update(s); webhookInfo=${JSON.stringify(info(b))}`,
      });
    },
  };
  return api;
}
