import { describe, expect, it } from 'vitest';
import { defaultThrottlePolicy, lockMs } from './throttle';

describe('lock windows', () => {
  const policy = { ...defaultThrottlePolicy, firstLockSeconds: 1, maxLockSeconds: 900 };
  it('are none within the free failures, then double from the first lock up to the cap', () => {
    expect([0, 4].map((n) => lockMs(n, 5, policy))).toEqual([0, 0]);
    expect([5, 6, 7, 14, 15, 1000].map((n) => lockMs(n, 5, policy) / 1000)).toEqual([1, 2, 4, 512, 900, 900]);
  });
});
