import { randomUUID } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EventTypes, makeEvent } from '../../shared/events';
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
  const log = memoryLogger();

  const appWith = (mailer: Mailer = outboxMailer(outbox, log)) =>
    createApp({ jobs: stores.jobs, mailer, log, claimStaleMs: 60_000, from: 'earshot <no-reply@earshot.test>', downloadUrl: new URL('https://earshot.test/dl') });

  const newJob = async () => {
    const id = randomUUID();
    await stores.jobs.create({ id, owner: alice.id, filename: 'talk.mp4' });
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
  });

  it('emails the owner the download link when the MP3 is ready', async () => {
    const id = await newJob();
    const res = await appWith().request('/', delivery(converted(id)));
    expect(res.status).toBe(200);
    const [mail, ...more] = await mailsFor(id);
    expect(more).toEqual([]);
    expect(mail).toMatchObject({ to: alice.email, from: 'earshot <no-reply@earshot.test>', subject: 'Your MP3 is ready: talk.mp3' });
    expect(mail!.text).toContain(`https://earshot.test/dl/download/${id}`);
    expect(mail!.text).toContain('2:05');
  });

  it('emails the owner why the conversion failed', async () => {
    const id = await newJob();
    expect((await appWith().request('/', delivery(failed(id)))).status).toBe(200);
    const [mail] = await mailsFor(id);
    expect(mail!.subject).toMatch(/could not convert/);
    expect(mail!.text).toContain('The video has no audio track.');
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

  it('sends nothing for a job that no longer exists', async () => {
    const id = randomUUID();
    expect((await appWith().request('/', delivery(converted(id)))).status).toBe(200);
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
