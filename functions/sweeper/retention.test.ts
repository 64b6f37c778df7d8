/** What earshot keeps and for how long, on each store adapter: convert, download and the sweeper together. */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CloudEvent, HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateLinkKey, linkSigner } from '../../shared/links';
import { memoryLogger } from '../../shared/log';
import { closeMongo } from '../../shared/mongo';
import { openStores, type Stores } from '../../shared/stores';
import { delivery, uploadedEvent } from '../../test/events';
import { dropDatabase, mongoReachable, mongoTestUrl } from '../../test/mongo';
import { describeWithService } from '../../test/services';
import { alice, bob, tempDir, testKeys } from '../../test/support';
import { createApp as convertApp } from '../convert/app';
import type { Transcode } from '../convert/transcode';
import { createApp as downloadApp } from '../download/app';
import { createApp as sweeperApp, pingEventType } from './app';
import { sweep } from './sweep';

/** Writes a few bytes as the MP3: what is kept, not how it sounds, is under test here. */
const fakeTranscode = (async (_input: string, output: string) => {
  await writeFile(output, Buffer.alloc(1000, 7));
  return { durationSeconds: 1, audioTrack: 1 };
}) as unknown as Transcode;

export const ping = (): RequestInit => {
  const { headers, body } = HTTP.binary(new CloudEvent({ type: pingEventType, source: '/apis/v1/namespaces/earshot/pingsources/sweep', data: { task: 'sweep' } }));
  return { method: 'POST', headers: headers as Record<string, string>, body: String(body) };
};

function retention(name: string, open: () => Promise<Stores>, close: () => Promise<void>) {
  describe(`retention: ${name}`, () => {
    let stores: Stores;
    let token: { alice: string; bob: string };
    let download: ReturnType<typeof downloadApp>;
    const log = memoryLogger();

    beforeAll(async () => {
      stores = await open();
      const keys = await testKeys(await tempDir());
      token = { alice: await keys.tokenFor(alice), bob: await keys.tokenFor(bob) };
      download = downloadApp({ ...stores, verify: keys.verify, links: await linkSigner({ keys: [generateLinkKey()] }, 3600), log });
    });
    afterAll(close);

    const as = (who: 'alice' | 'bob', method = 'GET') => ({ method, headers: { authorization: `Bearer ${token[who]}` } });

    /** An upload converted as convert does it, its MP3 kept for `retentionMs`. */
    const converted = async (retentionMs: number) => {
      const videoId = randomUUID();
      await stores.media.put('videos', videoId, { owner: alice.id, filename: 'talk.mp4', contentType: 'video/mp4' }, Readable.from([Buffer.alloc(5000, 1)]));
      await stores.jobs.create({ id: videoId, owner: alice.id, ownerEmail: alice.email, filename: 'talk.mp4' });
      const convert = convertApp({ ...stores, transcode: fakeTranscode, leaseMs: 60_000, retentionMs, log });
      const event = uploadedEvent({ videoId, owner: { id: alice.id, email: alice.email }, filename: 'talk.mp4', contentType: 'video/mp4', sizeBytes: 5000 });
      expect((await convert.request('/', delivery(event))).status).toBe(200);
      return videoId;
    };

    it('deletes the uploaded video once the MP3 is stored, and shows when the MP3 expires', async () => {
      const id = await converted(3_600_000);
      expect(await stores.media.stat('videos', id)).toBeNull();
      expect(await stores.media.stat('mp3s', id)).not.toBeNull();
      const view = (await (await download.request(`/jobs/${id}`, as('alice'))).json()) as Record<string, unknown>;
      expect(view).toMatchObject({ status: 'converted', downloadUrl: `/download/${id}`, expiresAt: expect.any(String) });
      expect(Date.parse(view.expiresAt as string)).toBeGreaterThan(Date.now() + 3_500_000);
      expect(view).not.toHaveProperty('expired');
    });

    it('answers 410 for an MP3 past its keeping; the sweeper deletes it and the job says so', async () => {
      const id = await converted(-1000);
      const gone = await download.request(`/download/${id}`, as('alice'));
      expect(gone.status).toBe(410);
      expect(gone.headers.get('content-type')).toBe('application/problem+json');
      expect(await gone.json()).toMatchObject({ status: 410, detail: expect.stringMatching(/expired on .* and was deleted/), expiredAt: expect.any(String) });
      // Someone else learns nothing of it.
      expect((await download.request(`/download/${id}`, as('bob'))).status).toBe(404);

      const swept = await sweeperApp({ ...stores, log, keepSourceVideos: false, abandonedAfterMs: 3_600_000 }).request('/', ping());
      expect(swept.status).toBe(200);
      expect(((await swept.json()) as { expiredMp3s: number }).expiredMp3s).toBeGreaterThanOrEqual(1);
      expect(await stores.media.stat('mp3s', id)).toBeNull();
      expect(await stores.jobs.get(id)).toMatchObject({ status: 'converted', expired: true });
      const view = (await (await download.request(`/jobs/${id}`, as('alice'))).json()) as Record<string, unknown>;
      expect(view).toMatchObject({ expired: true, expiresAt: expect.any(String) });
      expect(view).not.toHaveProperty('downloadUrl');
      expect(view).not.toHaveProperty('signedUrl');
      expect((await download.request(`/download/${id}`, as('alice'))).status).toBe(410);
    });

    it('removes a job with its MP3 and video for its owner (204), and is 404 to anyone else', async () => {
      const id = await converted(3_600_000);
      await stores.media.put('videos', id, { owner: alice.id, filename: 'talk.mp4', contentType: 'video/mp4' }, Readable.from([Buffer.alloc(10)]));
      const other = await download.request(`/jobs/${id}`, as('bob', 'DELETE'));
      expect(other.status).toBe(404);
      expect(other.headers.get('content-type')).toBe('application/problem+json');
      expect(await stores.jobs.get(id)).not.toBeNull();

      expect((await download.request(`/jobs/${id}`, as('alice', 'DELETE'))).status).toBe(204);
      expect(await stores.jobs.get(id)).toBeNull();
      expect(await stores.media.stat('mp3s', id)).toBeNull();
      expect(await stores.media.stat('videos', id)).toBeNull();
      expect((await download.request(`/jobs/${id}`, as('alice', 'DELETE'))).status).toBe(404);
      expect((await download.request(`/jobs/not an id`, as('alice', 'DELETE'))).status).toBe(404);
    });

    it('sweeps abandoned uploads, videos without a job and MP3s without one, and keeps the rest', async () => {
      const put = (bucket: 'videos' | 'mp3s', id: string) =>
        stores.media.put(bucket, id, { owner: alice.id, filename: 'x', contentType: 'video/mp4', ...(bucket === 'mp3s' && { sourceVideoId: id }) }, Readable.from([Buffer.alloc(10)]));
      const [abandoned, orphanVideo, orphanMp3, waiting] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
      await put('videos', abandoned);
      await stores.jobs.create({ id: abandoned, owner: alice.id, filename: 'x.mp4' });
      await put('videos', orphanVideo);
      await put('mp3s', orphanMp3);
      const kept = await converted(3_600_000);
      await new Promise((r) => setTimeout(r, 20));
      const now = new Date(); // all of the above is older than this; with no grace, it is all abandoned if unneeded
      await new Promise((r) => setTimeout(r, 20));
      await put('videos', waiting); // an upload in progress: its job comes next

      const report = await sweep({ ...stores, log, keepSourceVideos: false, abandonedAfterMs: 0, batch: 2 }, now);
      expect(report).toMatchObject({ abandonedJobs: expect.any(Number), videos: expect.any(Number), mp3s: expect.any(Number) });
      expect(report.abandonedJobs + report.videos + report.mp3s).toBeGreaterThanOrEqual(3);
      expect(await stores.jobs.get(abandoned)).toBeNull();
      for (const [bucket, id] of [['videos', abandoned], ['videos', orphanVideo], ['mp3s', orphanMp3]] as const) expect(await stores.media.stat(bucket, id), id).toBeNull();
      expect(await stores.media.stat('videos', waiting)).not.toBeNull();
      expect(await stores.media.stat('mp3s', kept)).not.toBeNull();
      expect(await stores.jobs.get(kept)).toMatchObject({ status: 'converted' });
    });

    it('answers 400 to anything but a ping', async () => {
      const app = sweeperApp({ ...stores, log, keepSourceVideos: false, abandonedAfterMs: 3_600_000 });
      for (const init of [{ method: 'POST', body: 'hello' }, { ...ping(), headers: { ...(ping().headers as Record<string, string>), 'ce-type': 'dev.earshot.video.uploaded' } }]) {
        const res = await app.request('/', init);
        expect(res.status).toBe(400);
        expect(res.headers.get('content-type')).toBe('application/problem+json');
      }
    });
  });
}

retention('files and SQLite', async () => openStores(pathToFileURL(join(await tempDir(), 'store'))), async () => {});

const url = mongoTestUrl('retention');
describeWithService('the MongoDB-wire server', await mongoReachable(), 'retention in MongoDB', () => {
  retention('GridFS and a MongoDB collection', () => openStores(new URL(url)), async () => {
    await closeMongo(url);
    await dropDatabase(url);
  });
});
