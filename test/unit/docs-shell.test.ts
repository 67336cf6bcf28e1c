// RUNBOOK.md and README.md are copy-paste exact: every shell block must parse as bash, and every
// toolkit flag a block names must exist in that script's --help. A renamed flag or a placeholder
// that bash reads as a redirection (`<id>`) fails here instead of on an operator's VPS.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const repoRoot = join(import.meta.dirname, '..', '..');
const DOCS = ['README.md', 'RUNBOOK.md'];

interface Block { file: string; line: number; text: string }

function shellBlocks(file: string): Block[] {
  const lines = readFileSync(join(repoRoot, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  let open: { line: number; body: string[]; indent: string } | null = null;
  lines.forEach((l, i) => {
    const fence = /^(\s*)```(\w*)\s*$/.exec(l);
    if (!open && fence && ['sh', 'bash', 'shell'].includes(fence[2])) open = { line: i + 1, body: [], indent: fence[1] };
    else if (open && fence && fence[2] === '') {
      blocks.push({ file, line: open.line, text: open.body.map((b) => b.slice(open!.indent.length)).join('\n') });
      open = null;
    } else if (open) open.body.push(l);
  });
  return blocks;
}

const helpCache = new Map<string, string>();
function helpOf(script: string): string {
  if (!helpCache.has(script)) {
    helpCache.set(script, execFileSync(process.execPath, [join(repoRoot, 'scripts', script), '--help'], { encoding: 'utf8' }));
  }
  return helpCache.get(script)!;
}

/** `node scripts/x.mts --a --b v` / `npx zx scripts/x.mts ...` invocations and the long flags each names */
export function toolkitInvocations(text: string): { script: string; flags: string[] }[] {
  const out: { script: string; flags: string[] }[] = [];
  // one logical command: join continuation lines, cut comments
  const commands = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.replace(/(^|\s)#.*$/, ''));
  for (const c of commands) {
    for (const m of c.matchAll(/scripts\/([a-z-]+\.mts)((?:\s+(?!&&|\|\||;|\||\))[^\s;|&)]+)*)/g)) {
      const flags = [...m[2].matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)].map((f) => f[1]);
      out.push({ script: m[1], flags });
    }
  }
  return out;
}

const blocks = DOCS.flatMap(shellBlocks);

describe('docs: shell blocks are copy-paste exact', () => {
  it('finds the shell blocks (the extractor itself works)', () => {
    expect(blocks.length).toBeGreaterThan(10);
    expect(toolkitInvocations('sudo node scripts/smoke.mts --config .env.prod --json  # x --not-this')).toEqual([{ script: 'smoke.mts', flags: ['--config', '--json'] }]);
  });

  it.each(blocks.map((b) => [`${b.file}:${b.line}`, b] as const))('%s parses as bash', (_where, b) => {
    const r = spawnSync('bash', ['-n'], { input: b.text, encoding: 'utf8' });
    expect(r.stderr.trim(), b.text).toBe('');
    expect(r.status).toBe(0);
  });

  // bash -n accepts `--to <id> --with-db`: it reads <id> as a redirection from a file named "id"
  it.each(blocks.map((b) => [`${b.file}:${b.line}`, b] as const))('%s has no <placeholder> bash would read as a redirection', (_where, b) => {
    const placeholders = b.text.split('\n')
      .map((l) => l.replace(/(^|\s)#.*$/, '').replace(/'[^']*'|"[^"]*"/g, "''"))
      .flatMap((l) => [...l.matchAll(/(?<![<\w])<[A-Za-z][\w.|-]*>/g)].map((m) => m[0]));
    expect(placeholders, b.text).toEqual([]);
  });

  it.each(blocks.map((b) => [`${b.file}:${b.line}`, b] as const))('%s names only flags its scripts have', (_where, b) => {
    const wrong: string[] = [];
    for (const { script, flags } of toolkitInvocations(b.text)) {
      let help: string;
      try {
        help = helpOf(script);
      } catch {
        wrong.push(`scripts/${script} does not exist or has no --help`);
        continue;
      }
      for (const f of flags) if (!new RegExp(`(^|[\\s,])${f}(?![a-z0-9-])`, 'm').test(help)) wrong.push(`${script} ${f}`);
    }
    expect(wrong, b.text).toEqual([]);
  });
});
