// Deadlines follow the monotonic clock: a wall-clock jump (NTP step, `date -s`) during a wait must
// neither end it at once nor stretch it.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deadline, type Clock } from '../../scripts/lib/host/deadline.mts';

function fakeClock(start = 1000): Clock & { advance(ms: number): void } {
  let t = start;
  const c = (() => t) as Clock & { advance(ms: number): void };
  c.advance = (ms) => void (t += ms);
  return c;
}

describe('deadline on an injected clock', () => {
  it.each([
    { name: 'not yet at half the time', timeoutMs: 1000, advance: [500], passed: false, remaining: 500 },
    { name: 'exactly at the end is not past it', timeoutMs: 1000, advance: [1000], passed: false, remaining: 0 },
    { name: 'just past the end', timeoutMs: 1000, advance: [600, 401], passed: true, remaining: 0 },
    { name: 'a zero timeout passes at the first tick', timeoutMs: 0, advance: [1], passed: true, remaining: 0 },
    { name: 'a long wait in small steps', timeoutMs: 90_000, advance: Array(180).fill(499), passed: false, remaining: 90_000 - 180 * 499 },
  ])('$name', ({ timeoutMs, advance, passed, remaining }) => {
    const clock = fakeClock();
    const d = deadline(timeoutMs, clock);
    for (const ms of advance) clock.advance(ms);
    expect(d.passed()).toBe(passed);
    expect(d.remainingMs()).toBe(remaining);
    expect(d.elapsedMs()).toBe(advance.reduce((a, b) => a + b, 0));
  });
});

describe('the default clock is monotonic, not the wall clock', () => {
  afterEach(() => vi.useRealTimers());

  it.each([
    { name: 'the wall clock jumps an hour forward: the 60 s wait is not over', jumpMs: 3_600_000 },
    { name: 'the wall clock jumps a day back: the wait still ends on time', jumpMs: -86_400_000 },
  ])('$name', async ({ jumpMs }) => {
    // fake only Date: performance.now() keeps real time, as it does when NTP steps the system clock
    vi.useFakeTimers({ toFake: ['Date'] });
    const d = deadline(60_000);
    const short = deadline(30);
    vi.setSystemTime(Date.now() + jumpMs);
    expect(d.passed()).toBe(false);
    expect(d.remainingMs()).toBeGreaterThan(59_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(short.passed()).toBe(true);
    expect(d.elapsedMs()).toBeLessThan(5_000);
  });
});
