// The operator's answer to a held release (recover.mts --keep / --roll-back): the journal line it
// writes, and the refusal of a release that is not held (nothing is written then).
import { describe, expect, it } from 'vitest';
import { choiceLine } from '../../scripts/lib/recovery/choose.mts';
import { UsageError } from '../../scripts/lib/cli/errors.mts';
import type { ReleaseLine } from '../../scripts/lib/release/journal.mts';

const at = '2026-12-07T12:00:00.000Z';
const heldR2: ReleaseLine = { id: 'r2', kind: 'rollout', appTag: 'v2', result: 'in-progress', held: { servedS: 9000 } };
const okR1: ReleaseLine = { id: 'r1', kind: 'rollout', appTag: 'v1', result: 'ok' };

describe('choosing for a held release', () => {
  it('--keep closes it as ok, naming who kept it', () => {
    expect(choiceLine([okR1, heldR2], 'r2', 'keep', 'ana', at)).toEqual({ id: 'r2', result: 'ok', endedAt: at, operatorChoice: 'keep', chosenBy: 'ana', phase: 'record', reason: 'kept by ana after recovery held it' });
  });
  it('--roll-back leaves it open for recovery, which then goes back with the restore', () => {
    expect(choiceLine([okR1, heldR2], 'r2', 'roll-back', 'ana', at)).toEqual({ id: 'r2', operatorChoice: 'roll-back', chosenBy: 'ana', chosenAt: at });
  });
  it.each([
    ['a finished release', 'r1', /not held.*held now: r2/],
    ['an unknown release', 'r9', /no release r9.*held now: r2/],
  ])('refuses %s with a usage error naming what is held', (_n, id, msg) => {
    expect(() => choiceLine([okR1, heldR2], id, 'keep', 'ana', at)).toThrow(UsageError);
    expect(() => choiceLine([okR1, heldR2], id, 'keep', 'ana', at)).toThrow(msg);
  });
  it('an in-progress release that was not held is refused (recovery decides it, not the operator)', () => {
    expect(() => choiceLine([{ id: 'r3', result: 'in-progress' }], 'r3', 'roll-back', 'ana', at)).toThrow(/not held.*no release is held now/);
  });
});
