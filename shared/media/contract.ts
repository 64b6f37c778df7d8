import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaExists, type MediaStore } from './store';

/** One suite every media adapter must pass. */
export function mediaStoreContract(name: string, open: () => Promise<MediaStore>): void {
  describe(`media: ${name}`, () => {
    let media: MediaStore;
    beforeAll(async () => {
      media = await open();
    });
    afterAll(() => media?.close());

    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    const meta = { owner: 'owner-1', filename: 'clip.mp4', contentType: 'video/mp4' };

    it('stores a stream and gives back its bytes and metadata', async () => {
      const id = randomUUID();
      const info = await media.put('videos', id, meta, Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]));
      expect(info).toMatchObject({ ...meta, id, bucket: 'videos', length: bytes.length });
      expect(await media.stat('videos', id)).toMatchObject({ ...meta, id, length: bytes.length, createdAt: expect.any(Date) });
      expect((await buffer(await media.read('videos', id))).equals(bytes)).toBe(true);
    });

    it('keeps the source video of an MP3', async () => {
      const id = randomUUID();
      await media.put('mp3s', id, { ...meta, contentType: 'audio/mpeg', sourceVideoId: 'video-1' }, Readable.from([bytes]));
      expect((await media.stat('mp3s', id))!.sourceVideoId).toBe('video-1');
    });

    it('keeps buckets apart', async () => {
      const id = randomUUID();
      await media.put('videos', id, meta, Readable.from([bytes]));
      expect(await media.stat('mp3s', id)).toBeNull();
    });

    it.each([
      [0, 0],
      [10, 99],
      [299_990, 299_999],
      [65_530, 200_000],
    ])('reads the inclusive byte range %i-%i', async (start, end) => {
      const id = randomUUID();
      await media.put('videos', id, meta, Readable.from([bytes]));
      expect((await buffer(await media.read('videos', id, { start, end }))).equals(bytes.subarray(start, end + 1))).toBe(true);
    });

    it('refuses an id that is already stored and keeps the first', async () => {
      const id = randomUUID();
      await media.put('videos', id, meta, Readable.from([bytes]));
      await expect(media.put('videos', id, meta, Readable.from([Buffer.from('other')]))).rejects.toBeInstanceOf(MediaExists);
      expect((await buffer(await media.read('videos', id))).equals(bytes)).toBe(true);
    });

    it('keeps nothing when the body fails midway, and rethrows its error', async () => {
      const id = randomUUID();
      const failing = Readable.from(
        (async function* () {
          yield bytes.subarray(0, 100_000);
          throw new Error('client went away');
        })(),
      );
      await expect(media.put('videos', id, meta, failing)).rejects.toThrow('client went away');
      expect(await media.stat('videos', id)).toBeNull();
    });

    it('answers null for unknown and malformed ids', async () => {
      expect(await media.stat('videos', randomUUID())).toBeNull();
      expect(await media.stat('videos', '../../etc/passwd')).toBeNull();
    });

    it('deletes, and deleting what is not there is no error', async () => {
      const id = randomUUID();
      await media.put('videos', id, meta, Readable.from([bytes]));
      await media.delete('videos', id);
      expect(await media.stat('videos', id)).toBeNull();
      await media.delete('videos', id);
    });

    it('lists a bucket by id, a page at a time, only what was stored before a time', async () => {
      const ids = Array.from({ length: 5 }, () => randomUUID());
      for (const id of ids) await media.put('mp3s', id, { ...meta, contentType: 'audio/mpeg', sourceVideoId: id }, Readable.from([bytes.subarray(0, 10)]));
      await new Promise((r) => setTimeout(r, 5));
      const before = new Date();
      await new Promise((r) => setTimeout(r, 5));
      const late = randomUUID();
      await media.put('mp3s', late, { ...meta, sourceVideoId: late }, Readable.from([bytes.subarray(0, 10)]));

      const seen: string[] = [];
      let page = await media.list('mp3s', { before, limit: 2 });
      while (page.length > 0) {
        expect(page.length).toBeLessThanOrEqual(2);
        seen.push(...page.map((m) => m.id));
        page = await media.list('mp3s', { before, after: page.at(-1)!.id, limit: 2 });
      }
      expect(seen).toEqual([...seen].sort());
      expect(seen).toEqual(expect.arrayContaining(ids));
      expect(seen).not.toContain(late);
      const listed = (await media.list('mp3s', { before, limit: 1000 })).find((m) => m.id === ids[0]);
      expect(listed).toMatchObject({ bucket: 'mp3s', owner: meta.owner, length: 10, createdAt: expect.any(Date) });
    });

    it('sums the bytes an owner has stored, videos and MP3s together', async () => {
      const owner = `quota-${randomUUID()}`;
      expect(await media.storedBytes(owner)).toBe(0);
      await media.put('videos', randomUUID(), { ...meta, owner }, Readable.from([bytes.subarray(0, 1000)]));
      const mp3 = randomUUID();
      await media.put('mp3s', mp3, { ...meta, owner, sourceVideoId: mp3 }, Readable.from([bytes.subarray(0, 234)]));
      await media.put('videos', randomUUID(), { ...meta, owner: `other-${randomUUID()}` }, Readable.from([bytes.subarray(0, 50)]));
      expect(await media.storedBytes(owner)).toBe(1234);
      await media.delete('mp3s', mp3);
      expect(await media.storedBytes(owner)).toBe(1000);
    });

    it('stores an empty body', async () => {
      const id = randomUUID();
      expect((await media.put('videos', id, meta, Readable.from([]))).length).toBe(0);
      expect((await buffer(await media.read('videos', id))).equals(Buffer.alloc(0))).toBe(true);
    });
  });
}
