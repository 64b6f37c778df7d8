/**
 * An event is a claim, not a fact: anything in the cluster can post to the broker. Forged
 * events go to the real convert and notify handlers (stores, ffmpeg and all), with a stranger's
 * address, ids that name nothing or someone else's job, jobs in the wrong state, and text of the
 * attacker's choosing. No one but the owner is ever mailed, nothing of the attacker's text
 * reaches a mail, and the owner's real email still goes out exactly once when the real event comes.
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp as convertApp } from '../functions/convert/app';
import { mp3Transcoder } from '../functions/convert/transcode';
import type { Email, Mailer } from '../functions/notify/mail/mailer';
import { createApp as notifyApp } from '../functions/notify/app';
import { createApp as uploadApp } from '../functions/upload/app';
import { EventTypes, fromHttp, makeEvent, type AnyEarshotEvent, type EarshotEvent } from '../shared/events';
import { generateLinkKey, linkSigner } from '../shared/links';
import { memoryLogger } from '../shared/log';
import type { Stores } from '../shared/stores';
import { delivery } from './events';
import { ffmpegPath, makeVideo } from './media';
import { fileStores } from './stores';
import { alice, tempDir, testKeys, uploadFile } from './support';

const stranger = { id: 'user-mallory', email: 'mallory@evil.example' };
const attackerText = 'Your account is locked: log in again at https://evil.example';
const attackerFile = `${attackerText}.mp4`;

describe('forged events', () => {
  const log = memoryLogger();
  const sent: Email[] = [];
  const emitted: EarshotEvent[] = [];
  let stores: Stores;
  let apps: { upload: ReturnType<typeof uploadApp>; convert: ReturnType<typeof convertApp>; notify: ReturnType<typeof notifyApp> };
  let token: string;
  let videos: { good: string; corrupt: string };

  beforeAll(async () => {
    const dir = await tempDir();
    const keys = await testKeys(dir);
    token = await keys.tokenFor(alice);
    stores = await fileStores(dir);
    const mailer: Mailer = { send: async (email) => void sent.push(email) };
    apps = {
      upload: uploadApp({ ...stores, verify: keys.verify, emit: async (e) => void emitted.push(e), maxUploadBytes: 10e6, limits: { inFlight: 100, perDay: 100 }, log }),
      convert: convertApp({ ...stores, transcode: mp3Transcoder({ ffmpegPath, quality: 4, timeoutSeconds: 60 }), leaseMs: 60_000, log }),
      notify: notifyApp({ jobs: stores.jobs, mailer, log, claimStaleMs: 60_000, from: 'earshot <no-reply@earshot.test>', downloadUrl: new URL('https://earshot.test'), links: await linkSigner({ keys: [generateLinkKey()] }, 3600) }),
    };
    const good = await makeVideo(join(dir, 'good.mp4'), { seconds: 1 });
    const corrupt = join(dir, 'corrupt.mp4');
    const bytes = await readFile(good);
    await writeFile(corrupt, bytes.subarray(0, Math.floor(bytes.length / 2)));
    videos = { good, corrupt };
  });

  afterEach(() => {
    expect(sent.map((m) => m.to).filter((to) => to !== alice.email)).toEqual([]);
    for (const mail of sent) expect(`${mail.subject}\n${mail.text}`).not.toMatch(/evil|mallory/);
  });

  /** alice uploads through the real upload function, which records her verified address. */
  const upload = (path: string, name: string) => uploadFile(apps.upload, token, path, name);
  const uploadedEvent = (id: string) => emitted.find((e) => e.subject === id)!;
  const post = (app: { request: (path: string, init: RequestInit) => Response | Promise<Response> }, event: EarshotEvent) => app.request('/', delivery(event));
  /** The real event: convert's reply to upload's event. */
  const convertReply = async (id: string): Promise<AnyEarshotEvent> => {
    const res = await post(apps.convert, uploadedEvent(id));
    expect(res.status).toBe(200);
    return fromHttp(Object.fromEntries(res.headers), await res.text());
  };
  const notified = async (event: EarshotEvent) => expect((await post(apps.notify, event)).status).toBe(200);
  const mailsFor = (id: string) => sent.filter((m) => m.jobId === id);

  const forgedConverted = (id: string, mp3Id = id) =>
    makeEvent(EventTypes.audioConverted, '/earshot/convert', id, { videoId: id, mp3Id, owner: stranger, filename: attackerFile, durationSeconds: 1, sizeBytes: 1 });
  const forgedFailed = (id: string) =>
    makeEvent(EventTypes.conversionFailed, '/earshot/convert', id, { videoId: id, owner: stranger, filename: attackerFile, reason: attackerText });
  const forgedUploaded = (id: string, owner: { id: string; email: string }) =>
    makeEvent(EventTypes.videoUploaded, '/earshot/upload', id, { videoId: id, owner, filename: attackerFile, contentType: 'video/mp4', sizeBytes: 1 });

  describe('audio.converted', () => {
    it('naming no job: nothing is sent', async () => {
      const id = randomUUID();
      await notified(forgedConverted(id));
      expect(mailsFor(id)).toEqual([]);
      expect(log.lines.findLast((l) => l.msg === 'event does not match the job')).toMatchObject({ videoId: id, why: 'no such job' });
    });

    it('for a job not converted yet: nothing is sent; the real event then mails the owner once', async () => {
      const id = await upload(videos.good, 'talk.mp4');
      await notified(forgedConverted(id));
      expect(mailsFor(id)).toEqual([]);

      await notified(await convertReply(id));
      await notified(forgedConverted(id));
      expect(mailsFor(id)).toEqual([expect.objectContaining({ to: alice.email, subject: 'Your MP3 is ready: talk.mp3' })]);
    });

    it('for a job that failed: nothing is sent; the real failure mails the owner once', async () => {
      const id = await upload(videos.corrupt, 'broken.mp4');
      const real = await convertReply(id);
      expect(real.type).toBe(EventTypes.conversionFailed);
      await notified(forgedConverted(id));
      expect(mailsFor(id)).toEqual([]);

      await notified(real);
      expect(mailsFor(id)).toEqual([expect.objectContaining({ to: alice.email, subject: 'We could not convert your video to broken.mp3' })]);
    });

    it('naming an MP3 the job does not have: nothing is sent', async () => {
      const id = await upload(videos.good, 'mine.mp4');
      const real = await convertReply(id);
      await notified(forgedConverted(id, 'another-mp3'));
      expect(mailsFor(id)).toEqual([]);
      await notified(real);
      expect(mailsFor(id)).toHaveLength(1);
    });

    it('for someone else\'s converted job, in the stranger\'s name: only the owner gets the job\'s own email, once', async () => {
      const id = await upload(videos.good, 'holiday.mp4');
      const real = await convertReply(id);
      await notified(forgedConverted(id));
      await notified(real);
      const [mail, ...more] = mailsFor(id);
      expect(more).toEqual([]);
      expect(mail).toMatchObject({ to: alice.email, subject: 'Your MP3 is ready: holiday.mp3' });
      expect(mail!.text).toContain(`https://earshot.test/download/${id}`);
    });
  });

  describe('conversion.failed', () => {
    it('naming no job: nothing is sent', async () => {
      const id = randomUUID();
      await notified(forgedFailed(id));
      expect(mailsFor(id)).toEqual([]);
    });

    it('for a job not converted yet, with the attacker\'s reason: nothing is sent; the conversion then mails the owner once', async () => {
      const id = await upload(videos.good, 'lecture.mp4');
      await notified(forgedFailed(id));
      expect(mailsFor(id)).toEqual([]);

      await notified(await convertReply(id));
      expect(mailsFor(id)).toEqual([expect.objectContaining({ to: alice.email, subject: 'Your MP3 is ready: lecture.mp3' })]);
    });

    it('for a converted job whose real event is still on its way: nothing is sent; the real one mails the owner once', async () => {
      const id = await upload(videos.good, 'song.mp4');
      const real = await convertReply(id);
      await notified(forgedFailed(id));
      expect(mailsFor(id)).toEqual([]);
      await notified(real);
      expect(mailsFor(id)).toEqual([expect.objectContaining({ to: alice.email, subject: 'Your MP3 is ready: song.mp3' })]);
    });

    it('for someone else\'s failed job: only the owner is mailed, once, with the job\'s reason, not the attacker\'s', async () => {
      const id = await upload(videos.corrupt, 'clip.mp4');
      const real = await convertReply(id);
      await notified(forgedFailed(id));
      await notified(real);
      const [mail, ...more] = mailsFor(id);
      expect(more).toEqual([]);
      expect(mail).toMatchObject({ to: alice.email, subject: 'We could not convert your video to clip.mp3' });
      expect(mail!.text).toContain(`Why: ${(await stores.jobs.get(id))!.failure}`);
    });
  });

  describe('video.uploaded', () => {
    it('naming no job: dropped (204), nothing converted or stored', async () => {
      const id = randomUUID();
      expect((await post(apps.convert, forgedUploaded(id, stranger))).status).toBe(204);
      expect(await stores.media.stat('mp3s', id)).toBeNull();
      expect(mailsFor(id)).toEqual([]);
    });

    it('naming someone else\'s job with the stranger as owner: dropped (204); the real event then converts and mails the owner once', async () => {
      const id = await upload(videos.good, 'family.mp4');
      expect((await post(apps.convert, forgedUploaded(id, stranger))).status).toBe(204);
      expect((await stores.jobs.get(id))!.status).toBe('uploaded');
      expect(await stores.media.stat('mp3s', id)).toBeNull();

      await notified(await convertReply(id));
      expect(mailsFor(id)).toEqual([expect.objectContaining({ to: alice.email, subject: 'Your MP3 is ready: family.mp3' })]);
    });

    it('with the owner\'s id but the stranger\'s address and the attacker\'s filename: the reply is the job\'s, and only the owner is mailed, once', async () => {
      const id = await upload(videos.good, 'talk.mp4');
      const res = await post(apps.convert, forgedUploaded(id, { id: alice.id, email: stranger.email }));
      expect(res.status).toBe(200);
      const reply = fromHttp(Object.fromEntries(res.headers), await res.text());
      expect(reply.data).toMatchObject({ videoId: id, owner: { id: alice.id, email: alice.email }, filename: 'talk.mp3' });
      await notified(reply);

      await notified(await convertReply(id)); // the real event, late: the same reply, no second email
      expect(mailsFor(id)).toEqual([expect.objectContaining({ to: alice.email, subject: 'Your MP3 is ready: talk.mp3' })]);
    });
  });
});
