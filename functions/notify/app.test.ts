import { randomUUID } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EventTypes, makeEvent } from '../../shared/events';
import { generateLinkKey, linkSigner, shownTime, type Links } from '../../shared/links';
import { memoryLogger } from '../../shared/log';
import type { Stores } from '../../shared/stores';
import { delivery } from '../../test/events';
import { fileStores } from '../../test/stores';
import { alice, tempDir } from '../../test/support';
import { createApp } from './app';
import { MailRejected, MailUnavailable, type Email, type Mailer } from './mail/mailer';
import { outboxMailer } from './mail/outbox';

describe('notify', () => {
  let stores: Stores;
  let outbox: string;
  let links: Links;
  const log = memoryLogger();

  const appWith = (mailer: Mailer = outboxMailer(outbox, log), keepSourceVideos = false) =>
    createApp({ jobs: stores.jobs, mailer, log, claimStaleMs: 60_000, from: 'earshot <no-reply@earshot.test>', downloadUrl: new URL('https://earshot.test/dl'), links, keepSourceVideos });

  /** A job as convert leaves it: converted with its MP3 recorded, or failed with its reason. */
  const newJob = async ({ status = 'converted', filename = 'talk.mp4', withEmail = true, expiresAt = undefined as Date | undefined } = {}) => {
    const id = randomUUID();
    await stores.jobs.create({ id, owner: alice.id, ...(withEmail && { ownerEmail: alice.email }), filename });
    if (status === 'uploaded') return id;
    await stores.jobs.startConversion(id, 60_000);
    if (status === 'converted') await stores.jobs.finishConversion(id, { id, durationSeconds: 125.4, sizeBytes: 2_000_000 }, expiresAt);
    if (status === 'failed') await stores.jobs.failConversion(id, 'The video has no audio track.');
    return id;
  };
  const owner = { id: alice.id, email: alice.email };
  const converted = (id: string) =>
    makeEvent(EventTypes.audioConverted, '/earshot/convert', id, { videoId: id, mp3Id: id, owner, filename: 'talk.mp3', durationSeconds: 125.4, sizeBytes: 2_000_000 });
  const failed = (id: string) =>
    makeEvent(EventTypes.conversionFailed, '/earshot/convert', id, { videoId: id, owner, filename: 'talk.mp4', reason: 'The video has no audio track.' });

  const mailsFor = async (id: string) => {
    const files = (await readdir(outbox).catch(() => [])).filter((f) => f.includes(id));
    return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(outbox, f), 'utf8')) as Email));
  };

  beforeAll(async () => {
    const dir = await tempDir();
    stores = await fileStores(dir);
    outbox = join(dir, 'outbox');
    links = await linkSigner({ keys: [generateLinkKey()] }, 7 * 24 * 3600);
  });

  it('emails the owner a signed download link, and until when it works, when the MP3 is ready', async () => {
    const id = await newJob();
    const sent = new Date();
    const res = await appWith().request('/', delivery(converted(id)));
    expect(res.status).toBe(200);
    const [mail, ...more] = await mailsFor(id);
    expect(more).toEqual([]);
    expect(mail).toMatchObject({ to: alice.email, from: 'earshot <no-reply@earshot.test>', subject: 'Your MP3 is ready: talk.mp3' });
    expect(mail!.text).toContain('2:05');
    expect(mail!.text).not.toContain('log in first');

    const link = new URL(mail!.text.match(/https:\/\/\S+/)![0]);
    expect(`${link.origin}${link.pathname}`).toBe(`https://earshot.test/dl/download/${id}`);
    const token = link.searchParams.get('sig')!;
    expect(await links.verify(token, id)).toEqual({ ok: true });
    // Valid for the TTL from sending: the day the mail names, and expired after it.
    const week = new Date(sent.getTime() + 7 * 24 * 3600 * 1000);
    expect(mail!.text).toMatch(new RegExp(`works until ${week.toISOString().slice(0, 10)} \\d\\d:\\d\\d UTC`));
    expect(await links.verify(token, id, new Date(week.getTime() + 60_000))).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('says until when the MP3 is kept, when it expires', async () => {
    const id = await newJob({ expiresAt: new Date('2031-02-03T04:05:00Z') });
    expect((await appWith().request('/', delivery(converted(id)))).status).toBe(200);
    const [mail] = await mailsFor(id);
    expect(mail!.text).toContain('earshot keeps the MP3 until 2031-02-03 04:05 UTC, then deletes it');
    expect(mail!.text).toContain('The video you uploaded has been deleted; only the MP3 is kept.');
  });

  it('never promises the link past the MP3\'s deletion, and says when the video is kept', async () => {
    const soon = new Date(Date.now() + 24 * 3600 * 1000);
    const id = await newJob({ expiresAt: soon });
    expect((await appWith(undefined, true).request('/', delivery(converted(id)))).status).toBe(200);
    const [mail] = await mailsFor(id);
    expect(mail!.text).toContain(`The link works until ${shownTime(soon)}, for anyone who has it: earshot deletes the MP3 then`);
    expect(mail!.text).not.toMatch(/keeps the MP3 until/);
    expect(mail!.text).toContain('earshot keeps the video you uploaded until you delete the job.');
  });

  it('tells the owner of a failed upload that its file was deleted', async () => {
    const id = await newJob({ status: 'failed' });
    expect((await appWith().request('/', delivery(failed(id)))).status).toBe(200);
    const [mail] = await mailsFor(id);
    expect(mail!.text).toContain('The file you uploaded has been deleted');
  });

  it('emails the owner why the conversion failed', async () => {
    const id = await newJob({ status: 'failed' });
    expect((await appWith().request('/', delivery(failed(id)))).status).toBe(200);
    const [mail] = await mailsFor(id);
    expect(mail).toMatchObject({ to: alice.email, subject: 'We could not convert your video to talk.mp3' });
    expect(mail!.text).toContain('The video has no audio track.');
  });

  it('takes recipient, filename, MP3 and reason from the job, not from the event', async () => {
    const stranger = { id: 'user-mallory', email: 'mallory@evil.example' };
    const ready = await newJob({ filename: 'lecture.mp4' });
    const lying = makeEvent(EventTypes.audioConverted, '/earshot/convert', ready, { videoId: ready, mp3Id: ready, owner: stranger, filename: 'Pay at evil.example.mp3', durationSeconds: 1, sizeBytes: 1 });
    expect((await appWith().request('/', delivery(lying))).status).toBe(200);
    const [mail] = await mailsFor(ready);
    expect(mail).toMatchObject({ to: alice.email, subject: 'Your MP3 is ready: lecture.mp3' });
    expect(mail!.text).toContain('2:05');
    expect(mail!.text).not.toContain('evil');

    const broken = await newJob({ status: 'failed', filename: 'clip.mov' });
    const lyingFailure = makeEvent(EventTypes.conversionFailed, '/earshot/convert', broken, { videoId: broken, owner: stranger, filename: 'x.mp4', reason: 'Log in again at https://evil.example' });
    expect((await appWith().request('/', delivery(lyingFailure))).status).toBe(200);
    const [failure] = await mailsFor(broken);
    expect(failure).toMatchObject({ to: alice.email, subject: 'We could not convert your video to clip.mp3' });
    expect(failure!.text).toContain('The video has no audio track.');
    expect(failure!.text).not.toContain('evil');
  });

  it.each([
    ['audio.converted for a job still uploaded', 'uploaded', converted],
    ['audio.converted for a failed job', 'failed', converted],
    ['conversion.failed for a converted job', 'converted', failed],
    ['conversion.failed for a job still uploaded', 'uploaded', failed],
  ] as const)('sends nothing for %s: 200 (not retried), logged', async (_case, status, event) => {
    const id = await newJob({ status });
    expect((await appWith().request('/', delivery(event(id)))).status).toBe(200);
    expect(await mailsFor(id)).toEqual([]);
    expect(log.lines.some((l) => l.msg === 'event does not match the job' && l.videoId === id)).toBe(true);
  });

  it('sends nothing for audio.converted naming an MP3 the job does not have', async () => {
    const id = await newJob();
    const other = makeEvent(EventTypes.audioConverted, '/earshot/convert', id, { videoId: id, mp3Id: 'someone-elses-mp3', owner, filename: 'a.mp3', durationSeconds: 1, sizeBytes: 1 });
    expect((await appWith().request('/', delivery(other))).status).toBe(200);
    expect(await mailsFor(id)).toEqual([]);
    expect((await appWith().request('/', delivery(converted(id)))).status).toBe(200);
    expect(await mailsFor(id)).toHaveLength(1);
  });

  it('sends nothing, and says so, for a job recorded before owner emails were kept', async () => {
    const id = await newJob({ withEmail: false });
    expect((await appWith().request('/', delivery(converted(id)))).status).toBe(200);
    expect(await mailsFor(id)).toEqual([]);
    expect(log.lines.some((l) => l.msg === 'job has no owner email; nobody to tell' && l.videoId === id)).toBe(true);
  });

  it('shows the filename without control or bidirectional characters', async () => {
    const id = await newJob({ filename: 'holiday\u202Evid\u0007.mp4' });
    await appWith().request('/', delivery(converted(id)));
    const [mail] = await mailsFor(id);
    expect(mail!.subject).toBe('Your MP3 is ready: holidayvid.mp3');
    expect(mail!.text).toContain('holidayvid.mp3 (2:05');
  });

  it('sends no second email for a redelivered event', async () => {
    const id = await newJob();
    const app = appWith();
    await app.request('/', delivery(converted(id)));
    const again = await app.request('/', delivery(converted(id)));
    expect(again.status).toBe(200);
    expect(await mailsFor(id)).toHaveLength(1);
  });

  it('answers 503 while the mail provider is unavailable, and sends once on the retry', async () => {
    const id = await newJob();
    const down: Mailer = { send: () => Promise.reject(new MailUnavailable('SendGrid answered 503')) };
    const res = await appWith(down).request('/', delivery(converted(id)));
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await mailsFor(id)).toHaveLength(0);
    expect((await appWith().request('/', delivery(converted(id)))).status).toBe(200);
    expect(await mailsFor(id)).toHaveLength(1);
  });

  it('logs a rejected message, answers 200 so it is not retried, and does not try again', async () => {
    const id = await newJob();
    let attempts = 0;
    const refusing: Mailer = { send: () => (attempts++, Promise.reject(new MailRejected('SendGrid refused the message (400)'))) };
    expect((await appWith(refusing).request('/', delivery(converted(id)))).status).toBe(200);
    expect(log.lines.some((l) => l.msg === 'mail rejected; not retried' && l.jobId === id)).toBe(true);
    expect((await appWith(refusing).request('/', delivery(converted(id)))).status).toBe(200);
    expect(attempts).toBe(1);
  });

  it('answers 409 (retry later) while another delivery is sending the same email', async () => {
    const id = await newJob();
    await stores.jobs.claimNotification(id, 60_000);
    expect((await appWith().request('/', delivery(converted(id)))).status).toBe(409);
  });

  it('sends nothing for a job that does not exist', async () => {
    const id = randomUUID();
    expect((await appWith().request('/', delivery(converted(id)))).status).toBe(200);
    expect((await appWith().request('/', delivery(failed(id)))).status).toBe(200);
    expect(await mailsFor(id)).toEqual([]);
  });

  it('answers a video.uploaded event with 400: notify does not handle it', async () => {
    const id = await newJob();
    const wrong = makeEvent(EventTypes.videoUploaded, '/earshot/upload', id, { videoId: id, owner, filename: 'a.mp4', contentType: 'video/mp4', sizeBytes: 1 });
    const res = await appWith().request('/', delivery(wrong));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});
