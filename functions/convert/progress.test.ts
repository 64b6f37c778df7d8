import { describe, expect, it } from 'vitest';
import { progressReporter } from './progress';

describe('progress reporter', () => {
  /** A clock the test moves, and every write with the time it was made. */
  const setup = (everyMs = 1000) => {
    let time = 0;
    const writes: [number, number][] = [];
    const errors: unknown[] = [];
    const pending: (() => void)[] = [];
    const reporter = progressReporter(
      (percent) => {
        writes.push([time, percent]);
        return new Promise<void>((resolve) => pending.push(resolve));
      },
      { everyMs, now: () => time, onError: (err) => errors.push(err) },
    );
    const finishWrites = async () => {
      pending.splice(0).forEach((resolve) => resolve());
      await reporter.settled();
    };
    return { reporter, writes, errors, finishWrites, at: (t: number) => void (time = t) };
  };

  it('writes the first report at once, then at most one per interval', async () => {
    const { reporter, writes, finishWrites, at } = setup();
    for (let t = 0; t <= 3000; t += 250) {
      at(t);
      reporter.report(t / 40);
      await finishWrites();
    }
    expect(writes).toEqual([
      [0, 0],
      [1000, 25],
      [2000, 50],
      [3000, 75],
    ]);
  });

  it('writes whole percents, only rising, within 0–100', async () => {
    const { reporter, writes, finishWrites, at } = setup();
    for (const [t, percent] of [[0, 12.9], [1000, 12.2], [2000, 11], [3000, -5], [4000, 13.5], [5000, 250], [6000, 100]] as const) {
      at(t);
      reporter.report(percent);
      await finishWrites();
    }
    expect(writes.map(([, p]) => p)).toEqual([12, 13, 100]);
  });

  it('never has two writes in flight; settled() waits for the one there is', async () => {
    const { reporter, writes, finishWrites, at } = setup();
    reporter.report(10);
    at(5000);
    reporter.report(20); // due, but the first write has not finished
    expect(writes).toEqual([[0, 10]]);
    let settled = false;
    const waiting = reporter.settled().then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await finishWrites();
    await waiting;
    expect(settled).toBe(true);
    reporter.report(20);
    expect(writes).toEqual([[0, 10], [5000, 20]]);
  });

  it('logs a failed write and goes on', async () => {
    let time = 0;
    const errors: unknown[] = [];
    const written: number[] = [];
    const reporter = progressReporter(
      async (percent) => {
        written.push(percent);
        if (percent === 10) throw new Error('store down');
      },
      { now: () => time, onError: (err) => errors.push(err) },
    );
    reporter.report(10);
    await reporter.settled();
    time = 1000;
    reporter.report(20);
    await reporter.settled();
    expect(written).toEqual([10, 20]);
    expect(errors).toEqual([new Error('store down')]);
  });
});
