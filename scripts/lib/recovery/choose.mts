// The operator's answer to a held release (recovery/decide.mts, forwardSteps): keep it, or roll it back
// with the pre-deploy backup. Written to the releases journal under the operation lock; the decision
// reads it: keep closes the release as ok, roll-back makes the next recovery go back as it would have
// within the gate window (the restore then moves what the release wrote into STATE_DIR/kept/, by choice).
import type { OpsEnv } from '../config/env.mts';
import { UsageError } from '../cli/errors.mts';
import { appendJournal, readJournal, type ReleaseLine } from '../release/journal.mts';
import { releaseWebhook } from '../release/webhook-hold.mts';

export type HeldChoice = 'keep' | 'roll-back';

/** The journal line for the operator's choice; throws UsageError when the release is not held. */
export function choiceLine(releases: ReleaseLine[], id: string, choice: HeldChoice, operator: string, at: string): ReleaseLine {
  const r = releases.find((x) => x.id === id);
  const held = releases.filter((x) => x.result === 'in-progress' && x.held).map((x) => x.id);
  const list = held.length ? `held now: ${held.join(', ')}` : 'no release is held now';
  if (!r) throw new UsageError(`no release ${id} in the journal (${list})`, { hint: 'node scripts/rollback.mts --config <env file> --list' });
  if (r.result !== 'in-progress' || !r.held) throw new UsageError(`release ${id} is not held for a decision (result ${r.result ?? '?'}; ${list})`);
  if (choice === 'keep') return { id, result: 'ok', endedAt: at, operatorChoice: 'keep', chosenBy: operator, phase: 'record', reason: `kept by ${operator} after recovery held it` };
  return { id, operatorChoice: 'roll-back', chosenBy: operator, chosenAt: at };
}

export function chooseHeld(env: OpsEnv, id: string, choice: HeldChoice, operator: string): ReleaseLine {
  const line = choiceLine(readJournal(env.layout.releases).releases, id, choice, operator, new Date().toISOString());
  appendJournal(env.layout.releases, line);
  // kept: it is the judged release now, Telegram may reach it (recovery already released a hold; this is idempotent)
  if (choice === 'keep') releaseWebhook(env.layout);
  return line;
}
