// Release sources for the rollout e2e tests and benchmark: a throwaway git clone of this repository
// where each "release" is a real commit (optionally patching the app), so rollout builds a real,
// distinct image tagged with that commit's sha.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** this checkout: the toolkit whose docker/caddy a fixture repository carries */
const TOOLKIT_ROOT = path.resolve(import.meta.dirname, '..', '..');

export class ReleaseSource {
  readonly dir: string;
  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Clone `repo` (its HEAD commit) into a temporary directory. */
  static create(repo: string, label = 'src'): ReleaseSource {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lzf-release-${label}-`));
    execFileSync('git', ['clone', '-q', '--no-hardlinks', repo, dir], { stdio: 'pipe' });
    const src = new ReleaseSource(dir);
    src.git('config', 'user.email', 'release-test@lazyflow.invalid');
    src.git('config', 'user.name', 'release test');
    return src;
  }

  git(...args: string[]): string {
    return execFileSync('git', ['-C', this.dir, ...args], { stdio: 'pipe' }).toString().trim();
  }

  get head(): string {
    return this.git('rev-parse', 'HEAD');
  }

  /** A new commit (empty unless `patch` changes files); returns its full sha. */
  commit(message: string, patch?: (dir: string) => void): string {
    patch?.(this.dir);
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.head;
  }

  /** Go back to an earlier commit on a new branch (later commits stay reachable by sha). */
  checkout(sha: string): void {
    this.git('checkout', '-q', '-B', `at-${sha.slice(0, 8)}`, sha);
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Replace one exact snippet in a file of the source; throws when it is not there (the app changed). */
export function patchFile(dir: string, rel: string, find: string, replace: string): void {
  const f = path.join(dir, rel);
  const text = fs.readFileSync(f, 'utf8');
  if (!text.includes(find)) throw new Error(`patch: ${rel} does not contain ${JSON.stringify(find)}`);
  fs.writeFileSync(f, text.replace(find, replace));
}

/** Bad releases used by the tests: each one a realistic way for a deploy to go wrong. */
export const BAD = {
  /** exits at boot before listening */
  crashAtBoot: (dir: string) => {
    const f = path.join(dir, 'app/src/server.ts');
    fs.writeFileSync(f, `console.error("bad release: exiting at boot"); process.exit(3);\n${fs.readFileSync(f, 'utf8')}`);
  },
  /** serves traffic, but its healthcheck always fails: the write probe Docker's HEALTHCHECK calls
   * (/health/write, internal: Caddy does not route it) answers 503; /health through Caddy is the real one */
  neverHealthy: (dir: string) =>
    patchFile(dir, 'app/src/app.ts', 'app.get("/health/write", healthWrite);',
      'app.get("/health/write", (c) => c.text("bad release: health always fails", 503));'),
  /** healthy, but answers CORS for any origin (a smoke check catches it) */
  corsAnyOrigin: (dir: string) => patchFile(dir, 'app/src/app.ts', 'if (!origin) return null;', 'if (!origin) return null;\n      return origin; // bad release: reflects any origin'),
  /** migrates the schema (user_version +1), then crashes: old code cannot run on the new schema */
  schemaThenCrash: (dir: string) => {
    patchFile(dir, 'app/src/db.ts', 'export const SCHEMA_VERSION = MIGRATIONS.length;',
      '(MIGRATIONS as string[]).push("ALTER TABLE tasks ADD COLUMN bad_release INTEGER");\nexport const SCHEMA_VERSION = MIGRATIONS.length;');
    patchFile(dir, 'app/src/server.ts', 'const store = createStore(db);', 'const store = createStore(db);\nconsole.error("bad release: crashing after the migration"); process.exit(4);');
  },
};

/** Remove the release images a test or benchmark built (never `keep`, e.g. the e2e run's own tag). */
/**
 * A fixture app as a repository of its own, as an adopter has it, with the toolkit's docker/caddy beside
 * it (a release's proxy image builds from the release's source; adopter.test.ts has the whole toolkit in
 * deploy/, as RUNBOOK's guide does). One commit, `message`; returns its directory.
 */
export function fixtureRepository(fixtureDir: string, prefix: string, message: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.cpSync(fixtureDir, dir, { recursive: true, filter: (p) => !p.includes('node_modules') });
  fs.cpSync(path.join(TOOLKIT_ROOT, 'docker/caddy'), path.join(dir, 'docker/caddy'), { recursive: true });
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { stdio: 'pipe' });
  git('init', '-q');
  git('config', 'user.email', 'bot@lazyflow.invalid');
  git('config', 'user.name', 'bot');
  git('add', '-A');
  git('commit', '-q', '-m', message);
  return dir;
}

/**
 * afterAll of a test on a fixture repository (fixtureRepository) deployed to a stack of its own: the
 * stack, the image repositories named for the test alone, and the repository.
 */
export async function removeFixtureStack(stack: { down(): Promise<void> } | undefined, images: string[], src: string): Promise<void> {
  await stack?.down();
  removeImageRepos(images);
  if (src) fs.rmSync(src, { recursive: true, force: true });
}

/** every tag of image repositories named for one test file alone (its own release builds) */
export function removeImageRepos(images: string[]): void {
  for (const image of images) {
    const tags = execFileSync('docker', ['images', image, '--format', '{{.Tag}}'], { stdio: 'pipe' }).toString().split('\n');
    removeImages(image, tags);
  }
}

export function removeImages(image: string, tags: Iterable<string>, keep: string[] = []): void {
  for (const t of new Set(tags)) {
    if (!t || keep.includes(t)) continue;
    try {
      execFileSync('docker', ['image', 'rm', '-f', `${image}:${t}`], { stdio: 'pipe' });
    } catch {
      /* already gone */
    }
  }
}
