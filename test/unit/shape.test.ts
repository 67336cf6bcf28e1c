// The bot shape rule (RUNBOOK "Bot shapes"): one row per case, first match wins.
import { describe, expect, it } from 'vitest';
import { decideShape, hasMiniApp, hasUploads, shapeOfRelease, shapeSummary, type ShapeInput } from '../../scripts/lib/config/shape.mts';
import { checkShape } from '../../scripts/lib/checks/preflight.mts';

const rows: [string, ShapeInput, string][] = [
  ['BOT_SHAPE=webhook wins over a FRONTEND_DIR', { values: { BOT_SHAPE: 'webhook', FRONTEND_DIR: 'web' } }, 'webhook'],
  ['BOT_SHAPE=webhook-miniapp wins over an absent default front end', { values: { BOT_SHAPE: 'webhook-miniapp' }, defaultFrontendDir: false }, 'webhook-miniapp'],
  ['BOT_SHAPE=polling is a shape', { values: { BOT_SHAPE: 'polling' } }, 'polling'],
  ['BOT_SHAPE with spaces around it', { values: { BOT_SHAPE: ' webhook ' } }, 'webhook'],
  ['BOT_SHAPE empty is unset', { values: { BOT_SHAPE: '' }, defaultFrontendDir: false }, 'webhook'],
  ['FRONTEND_DIR set: Mini App', { values: { FRONTEND_DIR: 'frontend' }, defaultFrontendDir: false }, 'webhook-miniapp'],
  ['FRONTEND_DIR blank is unset', { values: { FRONTEND_DIR: '  ' }, defaultFrontendDir: false }, 'webhook'],
  ['source has the default front end', { values: {}, defaultFrontendDir: true }, 'webhook-miniapp'],
  ['source lacks the default front end', { values: {}, defaultFrontendDir: false }, 'webhook'],
  ['the source decides over what the live release was', { values: {}, defaultFrontendDir: true, recorded: 'webhook' }, 'webhook-miniapp'],
  ['no source: the live release\'s recorded shape', { values: {}, recorded: 'webhook' }, 'webhook'],
  ['no source, recorded shape unknown: the default', { values: {}, recorded: 'carrier-pigeon' }, 'webhook-miniapp'],
  ['nothing known: the default (the reference app)', { values: {} }, 'webhook-miniapp'],
];

describe('decideShape', () => {
  it.each(rows)('%s', (_name, input, shape) => {
    const d = decideShape(input);
    expect(d).toMatchObject({ ok: true, shape });
    if (d.ok) expect(d.why.length).toBeGreaterThan(0);
  });

  it('an unknown BOT_SHAPE is a config error naming the value and the shapes', () => {
    const d = decideShape({ values: { BOT_SHAPE: 'webhooks' }, defaultFrontendDir: true });
    expect(d).toMatchObject({ ok: false });
    if (!d.ok) {
      expect(d.error).toContain('"webhooks"');
      expect(d.fix).toMatch(/webhook-miniapp, webhook, polling/);
    }
  });

  it('features and summaries follow the shape', () => {
    expect([hasMiniApp('webhook-miniapp'), hasMiniApp('webhook'), hasMiniApp('polling')]).toEqual([true, false, false]);
    expect([hasUploads('webhook-miniapp'), hasUploads('webhook'), hasUploads('polling')]).toEqual([true, false, false]);
    expect(shapeSummary('webhook')).toMatch(/no Mini App/);
  });
});

describe('shapeOfRelease: what the release of a tag was deployed as', () => {
  const releases = [
    { kind: 'rollout', appTag: 'a', shape: 'webhook-miniapp' },
    { kind: 'rollout', appTag: 'b', shape: 'webhook' },
    { kind: 'rollback', appTag: 'a' },
    { kind: 'rollout', appTag: 'c' },
  ];
  it.each<[string | null, string | null]>([['a', 'webhook-miniapp'], ['b', 'webhook'], ['c', null], ['z', null], [null, null]])('%s -> %s', (tag, shape) => {
    expect(shapeOfRelease(releases, tag)).toBe(shape);
  });
});

describe('preflight: the bot shape', () => {
  it.each<[string, ShapeInput, boolean, RegExp]>([
    ['webhook-only says what the toolkit does', { values: { BOT_SHAPE: 'webhook' } }, true, /^webhook \(BOT_SHAPE=webhook in the env file\): .*no Mini App is built or served/],
    ['the default says so', { values: {}, defaultFrontendDir: true }, true, /^webhook-miniapp \(the source has app\/web/],
    ['polling is accepted and says what the toolkit does', { values: { BOT_SHAPE: 'polling' } }, true, /^polling \(BOT_SHAPE=polling in the env file\): .*only the app container runs \(no Caddy.*stop-first.*no webhook is set and the queue moves/],
    ['an unknown value names the key and file', { values: { BOT_SHAPE: 'hook' } }, false, /BOT_SHAPE "hook" is not a bot shape .* in \/srv\/bot\/.env.prod/],
  ])('%s', (_n, input, ok, message) => {
    const r = checkShape(decideShape(input), '/srv/bot/.env.prod');
    expect(r.ok).toBe(ok);
    expect(r.message).toMatch(message);
    if (!ok) expect(r).toMatchObject({ key: 'BOT_SHAPE', fix: expect.stringContaining('/srv/bot/.env.prod') });
  });
});
