// Local mode (`npm run demo`): the env file the demo writes. Every install gets its own secrets
// (webhook secret, and the stand-in bot token that grammY runs with and that initData is signed with),
// kept in that file (mode 600) so restarts keep them, and the site is published on the loopback only:
// Docker's published ports pass any host firewall (ufw), so "local" must mean 127.0.0.1.
import { randomBytes, randomInt } from 'node:crypto';

export interface LocalSecrets {
  WEBHOOK_SECRET: string;
  LOCAL_BOT_TOKEN: string;
}

export const generateLocalSecrets = (): LocalSecrets => ({
  WEBHOOK_SECRET: randomBytes(32).toString('hex'),
  // the shape of a bot token (<digits>:<token>), so the app and grammY take it; never a real one
  LOCAL_BOT_TOKEN: `${randomInt(100000, 999999999)}:${randomBytes(27).toString('base64url')}`,
});

/** loopback only: the demo is never reachable from the network */
export const LOCAL_PUBLISH_ADDRESS = '127.0.0.1';

export function localEnvText(o: { httpsPort: number; httpPort: number; secrets: LocalSecrets }): string {
  const origin = o.httpsPort === 443 ? 'https://localhost' : `https://localhost:${o.httpsPort}`;
  return [
    '# Local try-out written by `npm run demo` (scripts/demo.mts). Not a production file:',
    '# for a server copy .env.prod.example to .env.prod and fill it in (RUNBOOK.md).',
    'COMPOSE_PROJECT_NAME=lazyflow',
    'STATE_DIR=./.state',
    'DOMAIN=localhost',
    `APP_URL=${origin}`,
    `ALLOWED_ORIGINS=${origin}`,
    '# empty token + localhost = local mode: no webhook registration, Telegram calls skipped',
    'BOT_TOKEN=',
    `WEBHOOK_SECRET=${o.secrets.WEBHOOK_SECRET}`,
    '# this install\'s stand-in token: the app runs grammY with it and checks initData against it',
    `LOCAL_BOT_TOKEN=${o.secrets.LOCAL_BOT_TOKEN}`,
    '# loopback only: published ports pass the host firewall, so the demo never listens on the network',
    `PUBLISH_ADDRESS=${LOCAL_PUBLISH_ADDRESS}`,
    `HTTP_PORT=${o.httpPort}`,
    `HTTPS_PORT=${o.httpsPort}`,
    'LOG_LEVEL=info',
    '# a try-out: no recovery timer in /etc (RUNBOOK "The safety net"); a server leaves this out',
    'LAZYFLOW_SAFETY_NET=off',
    '',
  ].join('\n');
}

/**
 * Lines to append to a demo env file written before these keys existed: its own secrets where it has
 * none (or the public default), and the loopback address where PUBLISH_ADDRESS is absent.
 */
export function missingLocalLines(values: Record<string, string>, secrets: LocalSecrets, publicDefaultSecret: string): string[] {
  const out: string[] = [];
  if (!values.WEBHOOK_SECRET || values.WEBHOOK_SECRET === publicDefaultSecret) out.push(`WEBHOOK_SECRET=${secrets.WEBHOOK_SECRET}`);
  if (!values.BOT_TOKEN && !values.LOCAL_BOT_TOKEN) out.push(`LOCAL_BOT_TOKEN=${secrets.LOCAL_BOT_TOKEN}`);
  if (values.PUBLISH_ADDRESS === undefined) out.push(`PUBLISH_ADDRESS=${LOCAL_PUBLISH_ADDRESS}`);
  // a try-out installs no recovery timer in /etc (RUNBOOK "The safety net")
  if (values.LAZYFLOW_SAFETY_NET === undefined) out.push('LAZYFLOW_SAFETY_NET=off');
  return out;
}
