import { describe, expect, it } from 'vitest';
import { memoryLogger } from '../../shared/log';
import type { MediaStore } from '../../shared/media/store';
import { Problem } from '../../shared/problem';
import { formatBytes, storageQuota } from './quota';

const KiB = 1024;
const GiB = 1024 ** 3;

describe('formatBytes', () => {
  it.each([
    [0, '0 bytes'],
    [1, '1 byte'],
    [1023, '1023 bytes'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [50_116, '48.9 KiB'],
    [321_987_654, '307 MiB'],
    [5 * GiB, '5 GiB'],
    [Math.ceil(5.1 * GiB), '5.1 GiB'],
    [3 * 1024 ** 4, '3 TiB'],
  ])('%d bytes read %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('never shows what is stored or left as more than it is, nor what is needed as less', () => {
    expect(formatBytes(5 * GiB - 1)).toBe('4.99 GiB');
    expect(formatBytes(5 * GiB - 1, 'up')).toBe('5 GiB');
    expect(formatBytes(10 * 1024 ** 2 + 1, 'up')).toBe('10.1 MiB');
    expect(formatBytes(1023.6 * KiB, 'up')).toBe('1 MiB');
  });
});

describe('storageQuota.admit', () => {
  const log = memoryLogger();
  const quotaWith = (storedBytes: number, quotaBytes = 10 * KiB * KiB, maxUploadBytes = 4 * KiB * KiB) =>
    storageQuota({ media: { storedBytes: async () => storedBytes } as Partial<MediaStore> as MediaStore, quotaBytes, maxUploadBytes, deleteUrl: '/jobs/{id}' });
  const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (err: unknown) => err as Problem);

  it('gives the file what is left of the quota, or the size limit when that is smaller', async () => {
    expect(await quotaWith(8 * KiB * KiB).admit(log, 'u', 0)).toEqual({ storedBytes: 8 * KiB * KiB, maxFileBytes: 2 * KiB * KiB, byQuota: true, declaredBytes: 0 });
    expect(await quotaWith(KiB).admit(log, 'u', 0)).toMatchObject({ maxFileBytes: 4 * KiB * KiB, byQuota: false });
  });

  it('allows a declared length the multipart envelope (64 KiB) over what is left, as the size limit does', async () => {
    const left = 2 * KiB * KiB;
    const quota = quotaWith(8 * KiB * KiB);
    expect(await quota.admit(log, 'u', left + 64 * KiB)).toMatchObject({ maxFileBytes: left });
    expect(await refusal(quota.admit(log, 'u', left + 64 * KiB + 1))).toMatchObject({ status: 413, extensions: { storedBytes: 8 * KiB * KiB } });
  });

  it('leaves a declared length over the size limit to the size limit, and says so for it after the body', async () => {
    const quota = quotaWith(8 * KiB * KiB, 10 * KiB * KiB, 4 * KiB * KiB);
    const declared = 4 * KiB * KiB + 64 * KiB + 1;
    const room = await quota.admit(log, 'u', declared);
    const explained = quota.explain(new Problem({ status: 413, title: 'Content Too Large' }), log, 'u', room) as Problem;
    expect(explained.detail).toBe(`The file is larger than the limit of ${4 * KiB * KiB} bytes.`);
  });

  it('answers 503 with Retry-After when the store cannot count', async () => {
    const down = { storedBytes: () => Promise.reject(new Error('store down')) } as Partial<MediaStore> as MediaStore;
    const refused = await refusal(storageQuota({ media: down, quotaBytes: 10 * KiB, maxUploadBytes: KiB, deleteUrl: '/jobs/{id}' }).admit(log, 'u', 0));
    expect(refused).toMatchObject({ status: 503, headers: { 'retry-after': '30' } });
    expect(log.lines.findLast((l) => l.msg === 'stored bytes not counted; upload refused')).toMatchObject({ level: 'error', userId: 'u' });
  });

  it('passes other errors, and 413s when the size limit was the tighter one, through as they are', async () => {
    const room = await quotaWith(KiB).admit(log, 'u', 0);
    const tooLarge = new Problem({ status: 413, title: 'Content Too Large', detail: 'size limit' });
    const bad = new Problem({ status: 400, title: 'Bad Request' });
    expect(quotaWith(KiB).explain(tooLarge, log, 'u', room)).toBe(tooLarge);
    const tight = await quotaWith(9 * KiB * KiB).admit(log, 'u', 0);
    expect(quotaWith(9 * KiB * KiB).explain(bad, log, 'u', tight)).toBe(bad);
  });
});
