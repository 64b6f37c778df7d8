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

    it('stores an empty body', async () => {
      const id = randomUUID();
      expect((await media.put('videos', id, meta, Readable.from([]))).length).toBe(0);
      expect((await buffer(await media.read('videos', id))).equals(Buffer.alloc(0))).toBe(true);
    });
  });
}
