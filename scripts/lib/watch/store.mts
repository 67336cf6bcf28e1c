// STATE_DIR/watch/state.json: the watch's memory between runs. Written atomically (temp, fsync,
// rename); bounded by construction (one entry per problem name, per live container, a few counts).
// An unreadable file is kept aside, not deleted, and the watch starts from a clean state.
import { writeJsonAtomic } from '../host/records.mts';
import fs from 'node:fs';
import path from 'node:path';
import { emptyState, STATE_VERSION, type WatchState } from './decide.mts';

export function watchDir(stateDir: string): string {
  return path.join(stateDir, 'watch');
}

export function watchStateFile(stateDir: string): string {
  return path.join(watchDir(stateDir), 'state.json');
}

export function readWatchState(file: string): { state: WatchState; note?: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: emptyState() };
    throw e;
  }
  try {
    const s = JSON.parse(text) as WatchState;
    if (s.version !== STATE_VERSION || typeof s.problems !== 'object') throw new Error(`version ${String(s.version)}`);
    return { state: { ...emptyState(), ...s } };
  } catch (e) {
    const aside = `${file}.unreadable-${Date.now()}`;
    fs.renameSync(file, aside);
    return { state: emptyState(), note: `watch state ${file} was unreadable (${(e as Error).message}); kept as ${aside}, starting fresh` };
  }
}

export function writeWatchState(file: string, state: WatchState): void {
  writeJsonAtomic(file, state);
}
