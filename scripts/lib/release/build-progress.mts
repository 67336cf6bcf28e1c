// Where a `docker build` is, from its output lines, for the rollout's build step: the classic builder
// prints "Step 3/12 : RUN bun install", BuildKit (plain progress) "#7 [build 3/6] RUN bun install".
// Pure: a line in, the step it starts (or null) out.

const CLASSIC = /^Step (\d+)\/(\d+) : (.*)$/;
const BUILDKIT = /^#\d+ \[(?:([\w.-]+) )?(\d+)\/(\d+)\] (.*)$/;
const MAX = 60;

const short = (s: string) => {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > MAX ? `${one.slice(0, MAX - 3)}...` : one;
};

export function buildProgress(line: string): string | null {
  const l = line.trimEnd();
  let m = CLASSIC.exec(l);
  if (m) return `step ${m[1]}/${m[2]} ${short(m[3])}`;
  m = BUILDKIT.exec(l);
  if (m) return `${m[1] ? `${m[1]} ` : ''}step ${m[2]}/${m[3]} ${short(m[4])}`;
  return null;
}

/** Feed chunks of output; calls onStep for each line that starts a step (chunks may split lines). */
export function buildProgressReader(onStep: (detail: string) => void): (chunk: Buffer | string) => void {
  let rest = '';
  return (chunk) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      const p = buildProgress(l);
      if (p) onStep(p);
    }
  };
}
