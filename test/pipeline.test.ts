/**
 * The whole flow in process: upload's event goes to convert, convert's reply to notify, exactly as
 * the broker would pass them; then the MP3 is downloaded and checked with ffmpeg.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp as convertApp } from '../functions/convert/app';
import { mp3Transcoder } from '../functions/convert/transcode';
import { createApp as downloadApp } from '../functions/download/app';
import { outboxMailer } from '../functions/notify/mail/outbox';
import { createApp as notifyApp } from '../functions/notify/app';
import { createApp as uploadApp } from '../functions/upload/app';
import { toHttp, type EarshotEvent } from '../shared/events';
import { linkSigner, loadLinkKeys } from '../shared/links';
import { memoryLogger } from '../shared/log';
import { openStores, type Stores } from '../shared/stores';
import { dropDatabase, mongoReachable, mongoTestUrl } from './mongo';
import { describeWithService } from './services';
import { decodedSeconds, ffmpegPath, makeVideo } from './media';
import { fileStores } from './stores';
import { alice, tempDir, testKeys, uploadFile } from './support';

pipelineSuite('files + SQLite', fileStores);

describeWithService('the MongoDB-wire server', await mongoReachable(), 'pipeline on MongoDB', () => {
  const url = mongoTestUrl('pipeline');
  let stores: Stores | undefined;
  afterAll(async () => {
    await stores?.close();
    await dropDatabase(url);
  });
  pipelineSuite('GridFS + a jobs collection', async () => (stores = await openStores(new URL(url))));
});

function pipelineSuite(backend: string, open: (dir: string) => Promise<Stores>) {
  describe(`pipeline on ${backend}`, () => {
    let dir: string;
    let outbox: string;
    let token: string;
    let apps: {
      upload: ReturnType<typeof uploadApp>;
      convert: ReturnType<typeof convertApp>;
      notify: ReturnType<typeof notifyApp>;
      download: ReturnType<typeof downloadApp>;
    };
    const emitted: EarshotEvent[] = [];
    let stores: Stores;

    beforeAll(async () => {
      dir = await tempDir();
      outbox = join(dir, 'outbox');
      const keys = await testKeys(dir);
      token = await keys.tokenFor(alice);
      stores = await open(dir);
      const log = memoryLogger();
      const links = await linkSigner(await loadLinkKeys(undefined, dir), 7 * 24 * 3600);
      apps = {
        upload: uploadApp({ ...stores, verify: keys.verify, emit: async (e) => void emitted.push(e), maxUploadBytes: 50e6, limits: { inFlight: 3, perDay: 50 }, log }),
        convert: convertApp({ ...stores, transcode: mp3Transcoder({ ffmpegPath, quality: 4, timeoutSeconds: 120 }), leaseMs: 60_000, log }),
        notify: notifyApp({ jobs: stores.jobs, mailer: outboxMailer(outbox, log), log, claimStaleMs: 60_000, from: 'earshot <no-reply@earshot.test>', downloadUrl: new URL('http://localhost:8085'), links }),
        download: downloadApp({ ...stores, verify: keys.verify, links, log }),
      };
    });

    const upload = (path: string, name: string) => uploadFile(apps.upload, token, path, name);

    /** The broker's part: deliver upload's event to convert, and convert's reply (as it came) to notify. */
    const deliver = async (videoId: string) => {
      const event = emitted.find((e) => e.subject === videoId)!;
      const { headers, body } = toHttp(event);
      const converted = await apps.convert.request('/', { method: 'POST', headers, body });
      expect(converted.status).toBe(200);
      const reply = { method: 'POST', headers: Object.fromEntries(converted.headers), body: await converted.text() };
      const notified = await apps.notify.request('/', reply);
      expect(notified.status).toBe(200);
      return reply.headers['ce-type'];
    };

    const job = async (id: string) =>
      (await (await apps.download.request(`/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { status: string; downloadUrl?: string; error?: string };
    const mails = async (id: string) =>
      Promise.all((await readdir(outbox).catch(() => [])).filter((f) => f.includes(id)).map(async (f) => JSON.parse(await readFile(join(outbox, f), 'utf8'))));

    it('turns an uploaded MP4 (index at the end) into an MP3 the owner is emailed about and can download', async () => {
      const video = await makeVideo(join(dir, 'talk.mp4'), { seconds: 5 });
      const id = await upload(video, 'talk.mp4');
      expect((await job(id)).status).toBe('uploaded');

      expect(await deliver(id)).toBe('dev.earshot.audio.converted');
      const status = await job(id);
      expect(status.status).toBe('converted');

      const res = await apps.download.request(status.downloadUrl!, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="talk.mp3"');
      const mp3 = join(dir, 'talk.mp3');
      const bytes = Buffer.from(await res.arrayBuffer());
      await writeFile(mp3, bytes);
      expect(Math.abs((await decodedSeconds(mp3)) - (await decodedSeconds(video)))).toBeLessThanOrEqual(0.5);

      // Resuming a download: byte ranges come from the store, not from the whole file.
      const ranged = await apps.download.request(status.downloadUrl!, { headers: { authorization: `Bearer ${token}`, range: 'bytes=100-1099' } });
      expect(ranged.status).toBe(206);
      expect(ranged.headers.get('content-range')).toBe(`bytes 100-1099/${bytes.length}`);
      expect(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(100, 1100))).toBe(true);
      const tail = await apps.download.request(status.downloadUrl!, { headers: { authorization: `Bearer ${token}`, range: 'bytes=-500' } });
      expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 500))).toBe(true);

      const [mail, ...more] = await mails(id);
      expect(more).toEqual([]);
      expect(mail).toMatchObject({ to: alice.email, subject: 'Your MP3 is ready: talk.mp3' });
      // The email's link opens the MP3 with no login.
      const link = new URL((mail.text as string).match(/http:\/\/localhost:8085\/download\/\S+/)![0]);
      expect(link.pathname).toBe(`/download/${id}`);
      const bySignedLink = await apps.download.request(`${link.pathname}${link.search}`);
      expect(bySignedLink.status).toBe(200);
      expect(Buffer.from(await bySignedLink.arrayBuffer()).equals(bytes)).toBe(true);
    });

    it('makes one MP3 and one email when the same video.uploaded is delivered twice', async () => {
      const id = await upload(await makeVideo(join(dir, 'twice.mp4'), { seconds: 2 }), 'twice.mp4');
      await deliver(id);
      const first = await stores.media.stat('mp3s', id);
      await deliver(id);
      const second = await stores.media.stat('mp3s', id);
      expect(second).toEqual(first); // the same stored MP3, not made again
      expect(await mails(id)).toHaveLength(1);
    });

    it('tells the owner when a corrupt video cannot be converted', async () => {
      const good = await readFile(await makeVideo(join(dir, 'whole.mp4'), { seconds: 2 }));
      const corrupt = join(dir, 'corrupt.mp4');
      await writeFile(corrupt, good.subarray(0, Math.floor(good.length * 0.6)));
      const id = await upload(corrupt, 'corrupt.mp4');
      expect(await deliver(id)).toBe('dev.earshot.conversion.failed');
      expect(await job(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/could not be read/) });
      const [mail] = await mails(id);
      expect(mail.subject).toMatch(/could not convert/);
    });

    it('tells the owner when a video has no audio', async () => {
      const id = await upload(await makeVideo(join(dir, 'mute.mp4'), { seconds: 1, audio: false }), 'mute.mp4');
      expect(await deliver(id)).toBe('dev.earshot.conversion.failed');
      const [mail] = await mails(id);
      expect(mail.text).toContain('The video has no audio track.');
    });
  });
}
