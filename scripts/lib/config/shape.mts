// The bot's shape (issue 18): what the toolkit builds, serves and checks follows what the app is.
//   webhook-miniapp  Telegram delivers to /webhook/<secret> through Caddy; Caddy also serves the app's
//                    Mini App (built from FRONTEND_DIR) and the app has uploads (/files, /media).
//   webhook          the same webhook, no Mini App and no uploads: the proxy image carries no front end,
//                    `/` is Caddy's 404; smoke checks that no Mini App is served and expects no /files route.
//   polling          the app calls getUpdates, no ingress: only the app container runs (no Caddy, no
//                    domain, no certificate, no published port), replaced stop-first; set by BOT_SHAPE only.
// Pure: the env file's values and, where known, what the release's source holds, or what the live
// release was deployed as. Rule (RUNBOOK "Bot shapes"), first match wins:
//   1. BOT_SHAPE in the env file (one of the three; anything else is a config error);
//   2. FRONTEND_DIR set: webhook-miniapp;
//   3. the release's source known (rollout, preflight): the front-end directory the proxy image would
//      build by default (DEFAULT_FRONTEND_DIR) present -> webhook-miniapp, absent -> webhook;
//   4. the shape the live release was deployed as (the releases journal), for smoke and status;
//   5. webhook-miniapp (the reference app).

export const BOT_SHAPES = ['webhook-miniapp', 'webhook', 'polling'] as const;
export type BotShape = (typeof BOT_SHAPES)[number];

/** the front end the proxy image builds when FRONTEND_DIR is unset (docker/caddy/Dockerfile's default) */
export const DEFAULT_FRONTEND_DIR = 'app/web';

export interface ShapeInput {
  values: Record<string, string | undefined>;
  /** does the release's source hold DEFAULT_FRONTEND_DIR? undefined: no source at hand */
  defaultFrontendDir?: boolean;
  /** the shape the live release was deployed as (journal), if any */
  recorded?: string | null;
}

export type ShapeDecision =
  | { ok: true; shape: BotShape; why: string }
  | { ok: false; error: string; fix: string };

export function isBotShape(v: unknown): v is BotShape {
  return typeof v === 'string' && (BOT_SHAPES as readonly string[]).includes(v);
}

export function decideShape(i: ShapeInput): ShapeDecision {
  const set = (i.values.BOT_SHAPE ?? '').trim();
  if (set) {
    if (isBotShape(set)) return { ok: true, shape: set, why: `BOT_SHAPE=${set} in the env file` };
    return { ok: false, error: `BOT_SHAPE "${set.slice(0, 40)}" is not a bot shape (${BOT_SHAPES.join(', ')})`, fix: `set BOT_SHAPE to one of ${BOT_SHAPES.join(', ')}, or remove it to let the toolkit decide` };
  }
  if ((i.values.FRONTEND_DIR ?? '').trim()) return { ok: true, shape: 'webhook-miniapp', why: `FRONTEND_DIR=${i.values.FRONTEND_DIR!.trim()} names the Mini App` };
  if (i.defaultFrontendDir === true) return { ok: true, shape: 'webhook-miniapp', why: `the source has ${DEFAULT_FRONTEND_DIR} (the default Mini App)` };
  if (i.defaultFrontendDir === false) return { ok: true, shape: 'webhook', why: `no FRONTEND_DIR and no ${DEFAULT_FRONTEND_DIR} in the source: no Mini App` };
  if (isBotShape(i.recorded)) return { ok: true, shape: i.recorded, why: 'as the live release was deployed' };
  return { ok: true, shape: 'webhook-miniapp', why: 'the default (no BOT_SHAPE, no FRONTEND_DIR)' };
}

/** What the toolkit does for a shape, in one line (preflight, check-app, status). */
export function shapeSummary(shape: BotShape): string {
  switch (shape) {
    case 'webhook-miniapp':
      return 'Telegram webhook through Caddy; the Mini App is built into the proxy image and switched with each release; smoke checks the Mini App and the uploads routes';
    case 'webhook':
      return 'Telegram webhook through Caddy; no Mini App is built or served (/ is a 404), no front-end switch; smoke checks that / serves no Mini App, skips the front-end check and expects no /files route';
    case 'polling':
      return 'long polling (getUpdates), no ingress: only the app container runs (no Caddy, no proxy image, no domain or certificate used, no published port), replaced stop-first (two pollers conflict); health is the container\'s own healthcheck, the Telegram gate checks that no webhook is set and the queue moves; smoke skips the checks that need Caddy';
  }
}

/** shape features the checks ask about */
export const hasMiniApp = (shape: BotShape) => shape === 'webhook-miniapp';
export const hasUploads = (shape: BotShape) => shape === 'webhook-miniapp';
/** a shape served through Caddy (every shape but polling, which has no ingress) */
export const hasProxy = (shape: BotShape) => shape !== 'polling';

/**
 * A polling bot, as the env file says: polling is only ever chosen by BOT_SHAPE (rule 1), so the
 * steps that have only the env at hand (the gates, the swap, the drain, recovery) ask this.
 */
export function pollingBot(values: Record<string, string | undefined> | undefined): boolean {
  return (values?.BOT_SHAPE ?? '').trim() === 'polling';
}

/** the shape the release that built appTag was deployed as (its rollout's journal line), or null */
export function shapeOfRelease(releases: { kind?: string; appTag?: string; shape?: unknown }[], appTag: string | null | undefined): BotShape | null {
  if (!appTag) return null;
  for (let i = releases.length - 1; i >= 0; i--) {
    const r = releases[i];
    if (r.appTag === appTag && isBotShape(r.shape)) return r.shape;
  }
  return null;
}
