// The releases' front ends on disk (STATE_DIR/frontend): what is staged, what `current` serves, and
// what retention removes. Real files in a temporary STATE_DIR.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stateLayout } from '../../scripts/lib/config/state.mts';
import { linksIn, observeFrontend, pruneFrontends, RELEASE_FILE } from '../../scripts/lib/release/frontend.mts';
import type { OpsEnv } from '../../scripts/lib/config/env.mts';

let root = '';
afterEach(() => rmSync(root, { recursive: true, force: true }));

function state(tags: string[], live: string | null, extra: string[] = []) {
  root = mkdtempSync(join(tmpdir(), 'frontend-state-'));
  const fe = join(root, 'frontend');
  for (const t of tags) {
    mkdirSync(join(fe, t, 'site'), { recursive: true });
    writeFileSync(join(fe, t, 'site', RELEASE_FILE), JSON.stringify({ appTag: t }));
  }
  for (const e of extra) mkdirSync(join(fe, e, 'site'), { recursive: true }); // no marker: an incomplete copy
  if (live) symlinkSync(live, join(fe, 'current'));
  return { layout: stateLayout(root) } as OpsEnv;
}

describe('front ends on disk', () => {
  it('staged are the complete copies; current is what is served, never counted as a release', () => {
    const env = state(['v1', 'v2'], 'v2', ['v3', '.staging-v3-abc']);
    expect(observeFrontend(env)).toEqual({ live: 'v2', staged: ['v1', 'v2'] });
  });

  it('nothing yet: no current, nothing staged', () => {
    root = mkdtempSync(join(tmpdir(), 'frontend-state-'));
    expect(observeFrontend({ layout: stateLayout(root) } as OpsEnv)).toEqual({ live: null, staged: [] });
  });

  it('retention keeps the given tags and the live one, removes the rest and half copies, and keeps current', () => {
    const env = state(['v1', 'v2', 'v3', 'v4'], 'v2', ['.staging-v5-abc']);
    expect(pruneFrontends(env, ['v3', 'v4']).sort()).toEqual(['v1']);
    expect(observeFrontend(env)).toEqual({ live: 'v2', staged: ['v2', 'v3', 'v4'] });
    expect(existsSync(join(root, 'frontend', '.staging-v5-abc'))).toBe(false);
    expect(existsSync(join(root, 'frontend', 'current', 'site', RELEASE_FILE))).toBe(true);
  });
});

describe('linksIn: what a copied front end must not hold (Caddy\'s file_server follows links)', () => {
  it('names every symbolic link, nested ones and links to directories included; plain files and directories pass', () => {
    root = mkdtempSync(join(tmpdir(), 'frontend-links-'));
    mkdirSync(join(root, 'site', 'assets', 'deep'), { recursive: true });
    writeFileSync(join(root, 'site', 'index.html'), '<html>');
    writeFileSync(join(root, 'Caddyfile'), ':80');
    expect(linksIn(root)).toEqual([]);
    symlinkSync('/data/caddy/certificates', join(root, 'site', 'assets', 'deep', 'keys'));
    symlinkSync('../index.html', join(root, 'site', 'assets', 'again.html'));
    symlinkSync('/etc', join(root, 'site', 'etc'));
    expect(linksIn(root)).toEqual(['site/assets/again.html', 'site/assets/deep/keys', 'site/etc']);
  });
});
