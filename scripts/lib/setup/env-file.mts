// The env file that setup writes: the example file with the operator's answers, values derived from
// them and generated secrets put into its own lines (comments and order kept). Pure: the text in,
// the text out and what changed, key by key. An existing file is completed, never overwritten: a
// value the operator already set stays, and one that disagrees with what the operator now gives is
// a conflict, reported and left alone.
import { placeholderReason, BOT_TOKEN_RE } from '../checks/preflight.mts';
import { pollingBot } from '../config/shape.mts';

/** What only the operator knows, asked on a terminal or given by flags. */
export interface OperatorInput {
  domain?: string;
  acmeEmail?: string;
  botToken?: string;
  /** '' = no admin chat (notifications off) */
  adminChatId?: string;
  /** non-secret KEY=VALUE lines the operator keeps elsewhere (--settings) */
  settings?: Record<string, string>;
}

/** the operator keys setup asks for, in the order it asks */
export const ASKED = ['DOMAIN', 'ACME_EMAIL', 'BOT_TOKEN', 'ADMIN_CHAT_ID'] as const;
export type AskedKey = (typeof ASKED)[number];
const INPUT_OF: Record<AskedKey, keyof OperatorInput> = { DOMAIN: 'domain', ACME_EMAIL: 'acmeEmail', BOT_TOKEN: 'botToken', ADMIN_CHAT_ID: 'adminChatId' };

/** Keys whose values are secrets: never printed, never taken from a command line or a settings file. */
export function isSecretKey(key: string): boolean {
  return /(TOKEN|SECRET|PASSWORD|PASSPHRASE|PRIVATE|_KEY$|^ALERT_WEBHOOK_URL$|^HEARTBEAT_URL$)/.test(key) && !/_FILE$/.test(key);
}

/** The example's stand-in for the operator's domain: every value carrying it follows DOMAIN. */
const EXAMPLE_DOMAIN = 'CHANGE_ME.example.com';

/** Why an answer is not acceptable, or null. */
export function invalidAnswer(key: AskedKey, value: string): string | null {
  const v = value.trim();
  switch (key) {
    case 'DOMAIN':
      if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/i.test(v)) return 'a domain name such as bot.example.org (no https://, no path)';
      return placeholderReason(v) ? `a real domain (${placeholderReason(v)})` : null;
    case 'ACME_EMAIL':
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) return 'an e-mail address (Let\'s Encrypt sends certificate notices there)';
      return placeholderReason(v) ? `a real address (${placeholderReason(v)})` : null;
    case 'BOT_TOKEN':
      return BOT_TOKEN_RE.test(v) ? null : 'the token @BotFather sent, 123456789:AA... (digits, a colon, 20+ letters, digits, _ or -)';
    case 'ADMIN_CHAT_ID':
      return v === '' || /^-?\d{1,20}$/.test(v) ? null : 'a chat id: a number (negative for a group), or empty for none';
  }
}

/** A value is "not set yet" when it is empty or still a placeholder (CHANGE_ME, example.com). */
export function unset(value: string | undefined): boolean {
  return value === undefined || value.trim() === '' || placeholderReason(value) !== null;
}

export interface EnvLine { key: string; value: string }

/** KEY=VALUE lines of an env file (no multi-line values: the toolkit's files have none). */
export function envLines(text: string): Map<string, EnvLine & { index: number }> {
  const out = new Map<string, EnvLine & { index: number }>();
  text.split('\n').forEach((raw, index) => {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(raw);
    if (!m) return;
    let v = m[2].trim();
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1);
    else v = v.replace(/\s+#.*$/, '');
    out.set(m[1], { key: m[1], value: v, index });
  });
  return out;
}

/** A value as one env file line: quoted only when dotenv would misread it. */
export function formatValue(value: string): string {
  if (/[\n\r]/.test(value)) throw new Error('a value cannot span lines');
  if (value === '' || !/(^\s|\s$|#|^["'`])/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  return `"${value.replace(/"/g, '\\"')}"`;
}

export type KeyAction =
  /** written now: from the operator, derived from DOMAIN, generated, or from --settings */
  | { key: string; action: 'set'; source: 'operator' | 'derived' | 'generated' | 'settings' | 'example' | 'shape'; value: string }
  /** already right (or the operator's own choice that nothing given now contradicts) */
  | { key: string; action: 'kept'; value: string }
  /** the file says one thing, the operator now says another: reported, not changed */
  | { key: string; action: 'conflict'; value: string; wanted: string; source: 'operator' | 'settings' }
  /** still not set after setup (a placeholder nobody filled): preflight would refuse it */
  | { key: string; action: 'missing'; value: string };

export interface EnvFilePlan {
  /** the new file text, or null when nothing changes */
  text: string | null;
  actions: KeyAction[];
  /** operator keys that are unset and were not given: ask for them (or fail without a terminal) */
  ask: AskedKey[];
}

export interface EnvFileInputs {
  /** .env.prod.example */
  example: string;
  /** the env file as it is, or null when there is none */
  existing: string | null;
  input: OperatorInput;
  /** a fresh secret for a generated key (WEBHOOK_SECRET) */
  generate: (key: string) => string;
}

/** keys generated when unset: secrets nobody needs to know (the example has CHANGE_ME for them) */
export function generatedKey(key: string, exampleValue: string): boolean {
  return isSecretKey(key) && !key.endsWith('_TOKEN') && /CHANGE_ME/.test(exampleValue);
}

/**
 * The plan for the env file. Base text: the existing file, else the example. Every key of the
 * example (and of --settings) gets a value in this order: the operator's answer or --settings entry;
 * derived from DOMAIN (the example's CHANGE_ME.example.com); a generated secret; the base's own.
 */
export function planEnvFile(i: EnvFileInputs): EnvFilePlan {
  const base = i.existing ?? i.example;
  const lines = base.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const current = envLines(base);
  const example = envLines(i.example);
  const actions: KeyAction[] = [];
  const ask: AskedKey[] = [];
  const given: Record<string, { value: string; source: 'operator' | 'settings' }> = {};
  for (const [k, v] of Object.entries(i.input.settings ?? {})) given[k] = { value: v, source: 'settings' };
  for (const k of ASKED) {
    const v = i.input[INPUT_OF[k]];
    if (typeof v === 'string') given[k] = { value: v.trim(), source: 'operator' };
  }
  const domain = given.DOMAIN?.value ?? (unset(current.get('DOMAIN')?.value) ? undefined : current.get('DOMAIN')!.value);
  // a polling bot (BOT_SHAPE=polling, from --settings or the file) has no domain, certificate or Mini
  // App: DOMAIN and ACME_EMAIL are not asked, and what follows DOMAIN is left empty (preflight needs
  // only its BOT_TOKEN); a placeholder there is emptied, never left for preflight to refuse
  const polling = pollingBot({ BOT_SHAPE: given.BOT_SHAPE?.value ?? current.get('BOT_SHAPE')?.value });
  const notUsed = (key: string, have: string | undefined) => {
    if (have === undefined || have.trim() === '') return actions.push({ key, action: 'kept', value: have ?? '' });
    put(key, '');
    actions.push({ key, action: 'set', source: 'shape', value: '' });
  };

  const put = (key: string, value: string) => {
    const line = `${key}=${formatValue(value)}`;
    const at = current.get(key);
    if (at) lines[at.index] = line;
    else lines.push(line);
  };

  const keys = [...new Set([...example.keys(), ...current.keys(), ...Object.keys(given)])];
  for (const key of keys) {
    const have = current.get(key)?.value;
    const g = given[key];
    const ex = example.get(key)?.value ?? '';
    if (g) {
      if (have === g.value) actions.push({ key, action: 'kept', value: have });
      else if (unset(have) || i.existing === null) { put(key, g.value); actions.push({ key, action: 'set', source: g.source, value: g.value }); }
      else actions.push({ key, action: 'conflict', value: have!, wanted: g.value, source: g.source });
      continue;
    }
    if ((ASKED as readonly string[]).includes(key)) {
      // an existing file's empty ADMIN_CHAT_ID is the operator's choice (no notifications)
      const chosenEmpty = key === 'ADMIN_CHAT_ID' && i.existing !== null && have !== undefined && have.trim() === '';
      if (!unset(have) || chosenEmpty) actions.push({ key, action: 'kept', value: have! });
      else if (polling && (key === 'DOMAIN' || key === 'ACME_EMAIL')) notUsed(key, have);
      else {
        ask.push(key as AskedKey);
        actions.push({ key, action: 'missing', value: have ?? '' });
      }
      continue;
    }
    if (!unset(have)) {
      actions.push({ key, action: 'kept', value: have! });
      continue;
    }
    // a placeholder (bot.example.com, CHANGE_ME) of a key whose example follows DOMAIN follows it too
    const template = have?.includes(EXAMPLE_DOMAIN) ? have : ex.includes(EXAMPLE_DOMAIN) ? ex : have || ex;
    if (template.includes(EXAMPLE_DOMAIN)) {
      // follows DOMAIN; without one yet, DOMAIN is asked for and this follows on the next plan (a
      // polling bot has none: left empty)
      if (!domain) {
        if (polling) notUsed(key, have);
        continue;
      }
      const value = template.replaceAll(EXAMPLE_DOMAIN, domain);
      put(key, value);
      actions.push({ key, action: 'set', source: 'derived', value });
    } else if (generatedKey(key, ex)) {
      const value = i.generate(key);
      put(key, value);
      actions.push({ key, action: 'set', source: 'generated', value });
    } else if (have === undefined) {
      // a file that lacks a key of the example (one the operator started with only the app's lines):
      // completed with the example's value; a placeholder there only the operator can fill
      if (placeholderReason(ex)) actions.push({ key, action: 'missing', value: ex });
      else if (example.has(key)) { put(key, ex); actions.push({ key, action: 'set', source: 'example', value: ex }); }
    } else if (have.trim() === '') actions.push({ key, action: 'kept', value: have });
    else actions.push({ key, action: 'missing', value: have });
  }
  const text = `${lines.join('\n')}\n`;
  const changed = actions.some((a) => a.action === 'set');
  return { text: changed || i.existing === null ? text : null, actions, ask };
}

/** An action as one line for the operator: secrets as their length, never their value. */
export function describeAction(a: KeyAction): string {
  const shown = (k: string, v: string) => (isSecretKey(k) ? (v ? `(secret, ${v.length} characters)` : '(empty)') : JSON.stringify(v));
  switch (a.action) {
    case 'set':
      return `${a.key} = ${shown(a.key, a.value)} (${({ operator: 'your answer', settings: 'from --settings', derived: 'from DOMAIN', generated: 'generated', example: 'the example\'s default', shape: 'not used by a polling bot' } as const)[a.source]})`;
    case 'kept':
      return `${a.key} kept`;
    case 'conflict':
      return `${a.key} is ${shown(a.key, a.value)} in the env file, but ${a.source === 'operator' ? 'you gave' : '--settings says'} ${shown(a.key, a.wanted)}: left as it is`;
    case 'missing':
      return `${a.key} is not set (${a.value ? placeholderReason(a.value) ?? 'empty' : 'empty'})`;
  }
}
