// The bot shape rule (RUNBOOK "Bot shapes"): one row per case, first match wins.
import { describe, expect, it } from 'vitest';
import { decideShape, hasMiniApp, hasUploads, shapeSummary, type ShapeInput } from '../../scripts/lib/config/shape.mts';

const rows: [string, ShapeInput, string][] = [
  ['BOT_SHAPE=webhook wins over a FRONTEND_DIR', { values: { BOT_SHAPE: 'webhook', FRONTEND_DIR: 'web' } }, 'webhook'],
  ['BOT_SHAPE=webhook-miniapp wins over an absent default front end', { values: { BOT_SHAPE: 'webhook-miniapp' }, defaultFrontendDir: false }, 'webhook-miniapp'],
  ['BOT_SHAPE=polling is a shape (deployed later)', { values: { BOT_SHAPE: 'polling' } }, 'polling'],
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
