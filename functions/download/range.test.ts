import { describe, expect, it } from 'vitest';
import { requestedRange } from './range';

describe('the byte range a Range header asks for (RFC 9110 §14)', () => {
  it.each([
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=4900-', { start: 4900, end: 4999 }],
    ['bytes=-100', { start: 4900, end: 4999 }],
    ['bytes=4990-9999', { start: 4990, end: 4999 }],
    ['bytes=-5000', { start: 0, end: 4999 }],
    // A suffix longer than the file: all of it (§14.1.2), not 416.
    ['bytes=-9999', { start: 0, end: 4999 }],
    ['bytes=-9999, 10-20', { start: 0, end: 4999 }],
    ['bytes=0-10,5-20', { start: 0, end: 20 }],
    ['bytes= 1 - 2 ', { start: 1, end: 2 }],
  ])('%s → %o', (header, range) => {
    expect(requestedRange(5000, header)).toEqual(range);
  });

  it.each([
    ['bytes=5000-6000'],
    ['bytes=5000-'],
    ['bytes=-0'],
    ['bytes=6000-7000,8000-'],
  ])('%s is unsatisfiable', (header) => {
    expect(requestedRange(5000, header)).toBe('unsatisfiable');
  });

  it.each([
    ['no header', undefined],
    ['an invalid range: last before first (§14.1.1)', 'bytes=100-50'],
    ['an invalid range among valid ones', 'bytes=0-10,100-50'],
    ['malformed', 'bytes=abc'],
    ['no unit', '0-99'],
    ['another unit', 'lines=1-2'],
    ['several ranges that do not touch', 'bytes=0-10,100-200'],
  ])('%s → the whole file', (_what, header) => {
    expect(requestedRange(5000, header)).toBeUndefined();
  });

  it('asks nothing of an empty file', () => {
    expect(requestedRange(0, 'bytes=-10')).toBeUndefined();
    expect(requestedRange(0, 'bytes=0-0')).toBeUndefined();
  });
});
