// Questions on the operator's terminal. A secret is read with echo off (raw mode: nothing of it is
// printed, not even its length), so it never reaches the screen, the scrollback or a log. Each
// answer is validated; a wrong one is asked again, three times at most.
import { ToolkitError, UsageError } from '../cli/errors.mts';

export interface Question {
  prompt: string;
  secret?: boolean;
  /** why the answer is not acceptable, or null */
  invalid: (answer: string) => string | null;
}

export interface Terminal {
  input: NodeJS.ReadStream;
  output: NodeJS.WritableStream;
}

/** One line from a terminal in raw mode. Ctrl-C ends the process (exit 130), Ctrl-D an empty answer. */
function readLine(t: Terminal, prompt: string, secret: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const { input, output } = t;
    let buf = '';
    // echo off before the question shows: what is typed as soon as it appears is never echoed
    input.setRawMode(true);
    input.resume();
    output.write(prompt);
    const done = (err?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(Object.assign(new ToolkitError('interrupted'), { exitCode: 130 }));
        if (ch === '\u0004') return done();
        if (ch === '\u007f' || ch === '\b') {
          if (buf.length) {
            buf = buf.slice(0, -1);
            if (!secret) output.write('\b \b');
          }
          continue;
        }
        if (ch < ' ') continue;
        buf += ch;
        if (!secret) output.write(ch);
      }
    };
    input.on('data', onData);
  });
}

export async function ask(t: Terminal, q: Question, tries = 3): Promise<string> {
  for (let i = 1; ; i++) {
    const answer = (await readLine(t, q.prompt, Boolean(q.secret))).trim();
    const why = q.invalid(answer);
    if (!why) return answer;
    if (i >= tries) throw new UsageError(`no acceptable answer after ${tries} tries: expected ${why}`);
    t.output.write(`  expected ${why}; again\n`);
  }
}

/** The terminal to ask on: stdin and stderr when both are terminals (stdout may be a pipe). */
export function terminal(): Terminal | null {
  return process.stdin.isTTY && process.stderr.isTTY ? { input: process.stdin, output: process.stderr } : null;
}
