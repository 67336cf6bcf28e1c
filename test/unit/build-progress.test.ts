import { describe, expect, it } from 'vitest';
import { buildProgress, buildProgressReader } from '../../scripts/lib/release/build-progress.mts';

describe('build progress: the Dockerfile step a docker build is at', () => {
  it.each([
    ['Step 3/12 : RUN bun install --frozen-lockfile', 'step 3/12 RUN bun install --frozen-lockfile'],
    ['#7 [build 3/6] RUN bun install', 'build step 3/6 RUN bun install'],
    ['#9 [2/4] COPY src ./src', 'step 2/4 COPY src ./src'],
    [`Step 1/2 : RUN ${'x'.repeat(100)}`, `step 1/2 RUN ${'x'.repeat(53)}...`],
    [' ---> Running in 3f2a', null],
    ['#7 0.512 bun install v1.4.5', null],
    ['Successfully built 1234', null],
    ['', null],
  ])('%j', (line, want) => expect(buildProgress(line)).toBe(want));

  it('lines split across chunks are read whole, each step once', () => {
    const seen: string[] = [];
    const read = buildProgressReader((d) => seen.push(d));
    read('Step 1/2 : FR');
    read('OM base\n ---> abc\nStep 2/2');
    read(' : CMD ["bun"]\n');
    expect(seen).toEqual(['step 1/2 FROM base', 'step 2/2 CMD ["bun"]']);
  });
});
