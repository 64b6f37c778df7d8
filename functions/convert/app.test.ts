import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ConvertOptions } from '../../shared/convert-options';
import { fromHttp } from '../../shared/events';
import { memoryLogger } from '../../shared/log';
import type { Job } from '../../shared/jobs/store';
import type { Stores } from '../../shared/stores';
import { delivery, uploadedEvent } from '../../test/events';
import { decodedSeconds, ffmpegPath, makeVideo } from '../../test/media';
import { fileStores, saveMedia } from '../../test/stores';
import { alice, bob, tempDir } from '../../test/support';
import { createApp } from './app';
import type { ConvertDeps } from './convert';
import { mp3Transcoder, type Transcode } from './transcode';

describe('convert', () => {
  let dir: string;
  let stores: Stores;
  let videos: { good: string; silent: string; corrupt: string };
  let transcodes = 0;
  const log = memoryLogger();

  const appWith = (overrides: Partial<ConvertDeps> = {}) => {
    const real = mp3Transcoder({ ffmpegPath, quality: 4, timeoutSeconds: 60 });
    const transcode: Transcode = (...args) => (transcodes++, real(...args));
    return createApp({ ...stores, transcode, leaseMs: 60_000, log, ...overrides });
  };

  /** Stores a video and its job the way upload does, and returns the event upload would send. */
  const uploaded = async (path: string, filename = 'clip.mp4', ownerEmail: string | null = alice.email, options?: ConvertOptions) => {
    const videoId = randomUUID();
    await stores.media.put('videos', videoId, { owner: alice.id, filename, contentType: 'video/mp4' }, createReadStream(path));
    await stores.jobs.create({ id: videoId, owner: alice.id, ownerEmail: ownerEmail ?? undefined, filename, options });
    return uploadedEvent({ videoId, owner: { id: alice.id, email: alice.email }, filename, contentType: 'video/mp4', sizeBytes: 1 });
  };

  const reply = async (res: Response) => fromHttp(Object.fromEntries(res.headers), await res.text());

  beforeAll(async () => {
    dir = await tempDir();
    process.env.TMPDIR = join(dir, 'tmp');
    await mkdir(process.env.TMPDIR);
    stores = await fileStores(dir);
    const good = await makeVideo(join(dir, 'good.mp4'), { seconds: 3 });
    const silent = await makeVideo(join(dir, 'silent.mp4'), { seconds: 1, audio: false });
    const corrupt = join(dir, 'corrupt.mp4');
    const bytes = await readFile(good);
    await writeFile(corrupt, bytes.subarray(0, Math.floor(bytes.length / 2))); // moov is at the end: cut off
    videos = { good, silent, corrupt };
  });

  it('converts the video to an MP3 that lasts as long as its audio, stores it, and replies audio.converted', async () => {
    const event = await uploaded(videos.good, 'My Holiday.mp4');
    const res = await appWith().request('/', delivery(event));
    expect(res.status).toBe(200);
    const next = await reply(res);
    expect(next.type).toBe('dev.earshot.audio.converted');
    expect(next.subject).toBe(event.data.videoId);
    expect(next.data).toMatchObject({ videoId: event.data.videoId, mp3Id: event.data.videoId, owner: event.data.owner, filename: 'My Holiday.mp3' });

    const mp3 = await stores.media.stat('mp3s', event.data.videoId);
    expect(mp3).toMatchObject({ owner: alice.id, filename: 'My Holiday.mp3', contentType: 'audio/mpeg', sourceVideoId: event.data.videoId });
    expect(next.type === 'dev.earshot.audio.converted' && next.data.sizeBytes).toBe(mp3!.length);
    expect(await stores.jobs.get(event.data.videoId)).toMatchObject({ status: 'converted', mp3: { id: event.data.videoId } });

    const file = join(dir, 'out.mp3');
    await saveMedia(stores.media, 'mp3s', event.data.videoId, file);
    expect(Math.abs((await decodedSeconds(file)) - (await decodedSeconds(videos.good)))).toBeLessThanOrEqual(0.5);
    expect(next.type === 'dev.earshot.audio.converted' && Math.abs(next.data.durationSeconds - 3)).toBeLessThanOrEqual(0.5);
  });

  it('converts with the options recorded with the job, and records the track it took', async () => {
    const event = await uploaded(videos.good, 'trimmed.mp4', alice.email, { start: 0.5, end: 1.5 });
    const res = await appWith().request('/', delivery(event));
    const next = await reply(res);
    expect(next.type === 'dev.earshot.audio.converted' && Math.abs(next.data.durationSeconds - 1)).toBeLessThanOrEqual(0.05);
    expect((await stores.jobs.get(event.data.videoId))?.mp3?.audioTrack).toBe(1);
  });

  it('answers a redelivery with the same reply and converts nothing again', async () => {
    const event = await uploaded(videos.good);
    const app = appWith();
    const first = await app.request('/', delivery(event));
    const before = transcodes;
    const second = await app.request('/', delivery(event));
    expect(transcodes).toBe(before);
    expect(second.status).toBe(200);
    const [a, b] = [await reply(first), await reply(second)];
    expect(b).toEqual(a);
  });

  it('deletes the uploaded video once its MP3 is stored, and dates the MP3\'s expiry', async () => {
    const event = await uploaded(videos.good);
    const before = Date.now();
    await appWith({ retentionMs: 3_600_000 }).request('/', delivery(event));
    expect(await stores.media.stat('mp3s', event.data.videoId)).not.toBeNull();
    expect(await stores.media.stat('videos', event.data.videoId)).toBeNull();
    const { expiresAt } = (await stores.jobs.get(event.data.videoId))!;
    expect(expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 3_600_000);
    // A redelivery finds it converted and the video gone: the same reply, no error.
    expect((await appWith().request('/', delivery(event))).status).toBe(200);
  });

  it('keeps the uploaded video when told to (KEEP_SOURCE_VIDEOS)', async () => {
    const event = await uploaded(videos.good);
    await appWith({ keepSourceVideos: true }).request('/', delivery(event));
    expect(await stores.media.stat('videos', event.data.videoId)).not.toBeNull();
  });

  it('deletes the video of a failed conversion: the failure email says nothing of it is kept', async () => {
    const event = await uploaded(videos.corrupt);
    await appWith({ keepSourceVideos: true }).request('/', delivery(event));
    expect(await stores.jobs.get(event.data.videoId)).toMatchObject({ status: 'failed' });
    expect(await stores.media.stat('videos', event.data.videoId)).toBeNull();
  });

  it('replies conversion.failed with a reason for a corrupt MP4', async () => {
    const event = await uploaded(videos.corrupt);
    const res = await appWith().request('/', delivery(event));
    expect(res.status).toBe(200);
    const next = await reply(res);
    expect(next.type).toBe('dev.earshot.conversion.failed');
    expect(next.type === 'dev.earshot.conversion.failed' && next.data.reason).toMatch(/could not be read as a video/);
    expect(await stores.jobs.get(event.data.videoId)).toMatchObject({ status: 'failed' });
    expect(await stores.media.stat('mp3s', event.data.videoId)).toBeNull();
  });

  it('replies conversion.failed for a video without audio', async () => {
    const event = await uploaded(videos.silent);
    const next = await reply(await appWith().request('/', delivery(event)));
    expect(next.type === 'dev.earshot.conversion.failed' && next.data.reason).toBe('The video has no audio track.');
  });

  it('answers a redelivered failure with the same failure, without converting again', async () => {
    const event = await uploaded(videos.corrupt);
    const app = appWith();
    const first = await reply(await app.request('/', delivery(event)));
    const before = transcodes;
    const second = await reply(await app.request('/', delivery(event)));
    expect(transcodes).toBe(before);
    expect(second).toEqual(first);
  });

  it('accepts and drops an event whose upload was withdrawn (204, so the broker does not retry)', async () => {
    const event = uploadedEvent({ videoId: randomUUID(), owner: { id: alice.id, email: alice.email }, filename: 'x.mp4', contentType: 'video/mp4', sizeBytes: 1 });
    const res = await appWith().request('/', delivery(event));
    expect(res.status).toBe(204);
  });

  it('builds its reply from the job: the event\'s email and filename are claims, not facts', async () => {
    const event = await uploaded(videos.good, 'lecture.mp4');
    const forged = { ...event, data: { ...event.data, owner: { id: alice.id, email: 'mallory@evil.example' }, filename: 'Click evil.example.mp4' } };
    const next = await reply(await appWith().request('/', delivery(forged)));
    expect(next.data).toMatchObject({ owner: { id: alice.id, email: alice.email }, filename: 'lecture.mp3' });
    // A redelivery of the settled job is answered from the job too.
    const again = await reply(await appWith().request('/', delivery(forged)));
    expect(again.data).toMatchObject({ owner: { id: alice.id, email: alice.email }, filename: 'lecture.mp3' });
  });

  it('takes a failure reply\'s email and filename from the job as well', async () => {
    const event = await uploaded(videos.silent, 'mute.mp4');
    const forged = { ...event, data: { ...event.data, owner: { id: alice.id, email: 'mallory@evil.example' }, filename: 'other.mp4' } };
    const next = await reply(await appWith().request('/', delivery(forged)));
    expect(next.type).toBe('dev.earshot.conversion.failed');
    expect(next.data).toMatchObject({ owner: { id: alice.id, email: alice.email }, filename: 'mute.mp4' });
  });

  it('drops (204) an event that names someone else\'s job, and converts nothing', async () => {
    const event = await uploaded(videos.good);
    const before = transcodes;
    const forged = { ...event, data: { ...event.data, owner: { id: bob.id, email: bob.email } } };
    expect((await appWith().request('/', delivery(forged))).status).toBe(204);
    expect(transcodes).toBe(before);
    expect((await stores.jobs.get(event.data.videoId))!.status).toBe('uploaded');
  });

  it('converts a job recorded before owner emails were kept, replying without an email', async () => {
    const event = await uploaded(videos.good, 'old.mp4', null);
    const next = await reply(await appWith().request('/', delivery(event)));
    expect(next.type).toBe('dev.earshot.audio.converted');
    expect(next.data.owner).toEqual({ id: alice.id });
  });

  it('answers 409 (retry later) while another delivery holds the job', async () => {
    const event = await uploaded(videos.good);
    await stores.jobs.startConversion(event.data.videoId, 60_000);
    const res = await appWith().request('/', delivery(event));
    expect(res.status).toBe(409);
  });

  it('renews its lease while converting, so a redelivery meanwhile waits (409) instead of converting twice', async () => {
    const event = await uploaded(videos.good);
    const real = mp3Transcoder({ ffmpegPath, quality: 4, timeoutSeconds: 60 });
    const slow: Transcode = async (input, output) => {
      await new Promise((r) => setTimeout(r, 300));
      return real(input, output);
    };
    const app = appWith({ transcode: slow, leaseMs: 60 });
    const first = app.request('/', delivery(event));
    await new Promise((r) => setTimeout(r, 200)); // several lease periods into the conversion
    expect((await app.request('/', delivery(event))).status).toBe(409);
    expect((await first).status).toBe(200);
  });

  it('records on the job how far ffmpeg has got while it converts, and the progress goes once converted', async () => {
    const event = await uploaded(videos.good);
    const id = event.data.videoId;
    const real = mp3Transcoder({ ffmpegPath, quality: 4, timeoutSeconds: 60 });
    let during: Job | null = null;
    const watched: Transcode = async (input, output, tags, onProgress) => {
      onProgress!(37.6); // the first report is written at once
      while (!(during = await stores.jobs.get(id))?.progress) await new Promise((r) => setTimeout(r, 10));
      return real(input, output, tags, onProgress);
    };
    const res = await appWith({ transcode: watched }).request('/', delivery(event));
    expect((await reply(res)).type).toBe('dev.earshot.audio.converted');
    expect(during).toMatchObject({ status: 'converting', progress: { percent: 37 } });
    const done = (await stores.jobs.get(id))!;
    expect(done).not.toHaveProperty('progress');
    expect(done.transitions.map((t) => t.status)).toEqual(['uploaded', 'converting', 'converted']);
    // One revision per change: uploaded 1, converting 2, the progress report 3, converted 4.
    expect(during!.progress!.revision).toBe(3);
    expect(done.transitions.map((t) => t.revision)).toEqual([1, 2, 4]);
    expect(done.revision).toBe(4);
  });

  it('answers 5xx when the store fails, and leaves the job ready for the retry', async () => {
    const event = await uploaded(videos.good);
    const broken = { ...stores.media, stat: stores.media.stat.bind(stores.media), put: stores.media.put.bind(stores.media), delete: stores.media.delete.bind(stores.media), close: async () => {}, read: async () => { throw new Error('store unavailable'); } };
    const res = await appWith({ media: broken }).request('/', delivery(event));
    expect(res.status).toBe(500);
    expect((await stores.jobs.get(event.data.videoId))!.status).toBe('uploaded');
    const retry = await appWith().request('/', delivery(event));
    expect((await reply(retry)).type).toBe('dev.earshot.audio.converted');
  });

  it.each([
    ['a body that is not a CloudEvent', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }],
    ['an event type convert does not handle', { method: 'POST', body: '{}', headers: { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': '/x', 'ce-type': 'dev.earshot.audio.converted', 'content-type': 'application/json' } }],
    ['an unknown event type', { method: 'POST', body: '{}', headers: { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': '/x', 'ce-type': 'com.example.other', 'content-type': 'application/json' } }],
    ['video.uploaded with invalid data', { method: 'POST', body: '{"videoId":"../../etc"}', headers: { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': '/x', 'ce-type': 'dev.earshot.video.uploaded', 'content-type': 'application/json' } }],
  ])('answers %s with a problem+json 400, logged', async (_case, init) => {
    const res = await appWith().request('/', init as RequestInit);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(log.lines.at(-1)).toMatchObject({ msg: 'request', status: 400 });
  });

  it('leaves no temp files behind, whatever the outcome', async () => {
    expect(await readdir(process.env.TMPDIR!)).toEqual([]);
  });

  it('keeps a huge event body out (413)', async () => {
    const res = await appWith().request('/', { method: 'POST', body: Readable.toWeb(Readable.from([Buffer.alloc(100 * 1024)])) as never, headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
  });
});
