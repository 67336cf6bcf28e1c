// RUNBOOK.md and README.md are copy-paste exact: every shell block must parse as bash, and every
// toolkit flag a block names must exist in that script's --help. A renamed flag or a placeholder
// that bash reads as a redirection (`<id>`) fails here instead of on an operator's VPS.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const repoRoot = join(import.meta.dirname, '..', '..');
const DOCS = ['README.md', 'RUNBOOK.md'];

interface Block { file: string; line: number; text: string; /** its section says it runs in a root shell */ rootShell: boolean }

/** A section whose blocks run in a root shell (`sudo -i`) carries this marker; its commands need no sudo. */
const ROOT_SHELL = '<!-- docs:root-shell -->';

function shellBlocks(file: string): Block[] {
  const lines = readFileSync(join(repoRoot, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  let open: { line: number; body: string[]; indent: string } | null = null;
  const sectionOf = (i: number) => {
    let start = i;
    while (start > 0 && !/^## /.test(lines[start])) start--;
    let end = i + 1;
    while (end < lines.length && !/^## /.test(lines[end])) end++;
    return lines.slice(start, end);
  };
  lines.forEach((l, i) => {
    const fence = /^(\s*)```(\w*)\s*$/.exec(l);
    if (!open && fence && ['sh', 'bash', 'shell'].includes(fence[2])) open = { line: i + 1, body: [], indent: fence[1] };
    else if (open && fence && fence[2] === '') {
      blocks.push({ file, line: open.line, text: open.body.map((b) => b.slice(open!.indent.length)).join('\n'), rootShell: sectionOf(i).includes(ROOT_SHELL) });
      open = null;
    } else if (open) open.body.push(l);
  });
  return blocks;
}

/** Where the innermost command around the end of `before` starts: quotes and $( ) nesting respected. */
function commandStart(before: string): number {
  const starts = [0];
  let quote: '' | "'" | '"' = '';
  for (let i = 0; i < before.length; i++) {
    const ch = before[i];
    if (quote === "'") { if (ch === "'") quote = ''; continue; }
    if (ch === '\\') { i++; continue; }
    if (ch === '"') { quote = quote ? '' : '"'; continue; }
    if (ch === "'" && !quote) { quote = "'"; continue; }
    if (before.startsWith('$(', i)) { starts.push(i + 2); i++; continue; }
    if (quote) { if (ch === ')' && starts.length > 1) starts.pop(); continue; }
    if (ch === '(') starts.push(i + 1);
    else if (ch === ')') { if (starts.length > 1) starts.pop(); }
    else if (before.startsWith('&&', i) || before.startsWith('||', i)) { starts[starts.length - 1] = i + 2; i++; }
    else if (ch === ';' || ch === '|' || ch === '`') starts[starts.length - 1] = i + 1;
  }
  return starts[starts.length - 1];
}

/**
 * Commands that read the env file (root's, mode 600) without sudo: a plain user gets EACCES. Each
 * mention of .env.prod belongs to the innermost command around it (after &&, ||, ;, |, $( or a
 * subshell's parenthesis, past VAR=value assignments); that command must be sudo or sudoedit.
 */
export function envReadersWithoutSudo(text: string): string[] {
  const bad: string[] = [];
  const commands = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.replace(/(^|\s)#.*$/, ''));
  for (const c of commands) {
    for (const m of c.matchAll(/\.env\.prod(?![\w.])/g)) {
      const before = c.slice(0, m.index);
      const cut = commandStart(before);
      // VAR=value assignments before the command word; C="sudo docker ... keeps a command in a variable
      const command = before.slice(cut).replace(/^\s*[A-Za-z_][A-Za-z0-9_]*="(?=[^"]*$)/, '').replace(/^\s*(?:(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=(?:"[^"]*"|'[^']*'|\S*)\s+)*/, '');
      if (!/^(sudo|sudoedit)\s/.test(command)) bad.push(`${command.trim().split(/\s+/).slice(0, 4).join(' ')} ... .env.prod`);
    }
  }
  return bad;
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
  // every script's --help once, up front: a dozen Node starts take more than one test's timeout on a loaded machine
  beforeAll(() => {
    for (const b of blocks) for (const { script } of toolkitInvocations(b.text)) {
      try { helpOf(script); } catch { /* reported by the test that names it */ }
    }
  }, 300_000);

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

  it('the env file rule itself: which commands count as reading it without sudo', () => {
    expect(envReadersWithoutSudo('sudo node scripts/smoke.mts --config .env.prod')).toEqual([]);
    expect(envReadersWithoutSudo('export APP_TAG=$(sudo node scripts/rollback.mts --config .env.prod --current)')).toEqual([]);
    expect(envReadersWithoutSudo('cd /srv/x && sudo APP_TAG="$APP_TAG" docker compose --env-file .env.prod up -d caddy')).toEqual([]);
    expect(envReadersWithoutSudo('sudo cp .env.prod.example .env.prod && sudo chmod 600 .env.prod')).toEqual([]);
    expect(envReadersWithoutSudo('node scripts/offsite.mts --config .env.prod --list   # sudo')).toEqual(['node scripts/offsite.mts --config ... .env.prod']);
    expect(envReadersWithoutSudo('f=$(sed -n "s/^KEY=//p" .env.prod)')).toEqual(['sed -n "s/^KEY=//p" ... .env.prod']);
    expect(envReadersWithoutSudo('RESTIC_PASSWORD_FILE=x restic snapshots | grep -f .env.prod')).toEqual(['grep -f ... .env.prod']);
    expect(envReadersWithoutSudo('C="sudo docker compose --env-file .env.prod"')).toEqual([]);
    expect(envReadersWithoutSudo('sudo sed -i "s/^W=.*/W=$(openssl rand -hex 32)/" .env.prod && sudo "${EDITOR:-nano}" .env.prod')).toEqual([]);
    expect(envReadersWithoutSudo("jq -r '.a | .b' x | grep -c y .env.prod")).toEqual(['grep -c y ... .env.prod']);
  });

  it.each(blocks.filter((b) => !b.rootShell).map((b) => [`${b.file}:${b.line}`, b] as const))('%s reads the env file only under sudo', (_where, b) => {
    expect(envReadersWithoutSudo(b.text), b.text).toEqual([]);
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
