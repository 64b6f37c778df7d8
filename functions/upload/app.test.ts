import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EarshotEvent } from '../../shared/events';
import { memoryLogger } from '../../shared/log';
import type { Stores } from '../../shared/stores';
import { makeVideo } from '../../test/media';
import { fileStores, storedFiles } from '../../test/stores';
import { alice, badTokens, tempDir, testKeys, type TestKeys } from '../../test/support';
import { createApp, type UploadDeps } from './app';
import { formatBytes } from './quota';

describe('upload', () => {
  let dir: string;
  let keys: TestKeys;
  let stores: Stores;
  let video: Uint8Array<ArrayBuffer>;
  let token: string;
  let emitted: EarshotEvent[];
  const log = memoryLogger();

  const appWith = (overrides: Partial<UploadDeps> = {}) =>
    createApp({
      ...stores,
      verify: keys.verify,
      emit: async (event) => void emitted.push(event),
      maxUploadBytes: 10 * 1024 * 1024,
      limits: { inFlight: 1000, perDay: 1000 },
      log,
      ...overrides,
    });

  const form = (...files: [string, Blob, string][]) => {
    const body = new FormData();
    for (const [field, blob, name] of files) body.append(field, blob, name);
    return body;
  };
  const post = (app: ReturnType<typeof createApp>, body: BodyInit, headers: Record<string, string> = {}) =>
    app.request('/upload', { method: 'POST', body, headers: { authorization: `Bearer ${token}`, ...headers } });

  beforeAll(async () => {
    dir = await tempDir();
    keys = await testKeys(dir);
    stores = await fileStores(dir);
    video = new Uint8Array(await readFile(await makeVideo(join(dir, 'clip.mp4'), { seconds: 2 })));
    token = await keys.tokenFor(alice);
  });
  beforeEach(() => {
    emitted = [];
  });

  it('stores the video with its owner, records the job and emits video.uploaded, then answers 202', async () => {
    const res = await post(appWith(), form(['file', new Blob([video]), 'holiday.mp4']));
    expect(res.status).toBe(202);
    const body = (await res.json()) as { videoId: string; statusUrl: string };
    expect(body.statusUrl).toBe(`/jobs/${body.videoId}`);
    expect(res.headers.get('location')).toBe(body.statusUrl);

    const stored = await stores.media.stat('videos', body.videoId);
    expect(stored).toMatchObject({ owner: alice.id, filename: 'holiday.mp4', contentType: 'video/mp4', length: video.length });
    expect(await stores.jobs.get(body.videoId)).toMatchObject({ status: 'uploaded', owner: alice.id, ownerEmail: alice.email, filename: 'holiday.mp4' });
    expect(await stores.jobs.get(body.videoId)).not.toHaveProperty('options'); // nothing was asked
    expect(emitted).toEqual([
      expect.objectContaining({
        type: 'dev.earshot.video.uploaded',
        subject: body.videoId,
        data: { videoId: body.videoId, owner: { id: alice.id, email: alice.email }, filename: 'holiday.mp4', contentType: 'video/mp4', sizeBytes: video.length },
      }),
    ]);
  });

  it('accepts the file under any field name, as the original system did', async () => {
    const res = await post(appWith(), form(['video', new Blob([video]), 'a.mp4']));
    expect(res.status).toBe(202);
  });

  it('records the option fields sent before the file with the job', async () => {
    const body = new FormData();
    body.append('quality', '4');
    body.append('loudness', '-16');
    body.append('start', '0.5');
    body.append('file', new Blob([video]), 'talk.mp4');
    const res = await post(appWith(), body);
    expect(res.status).toBe(202);
    const { videoId } = (await res.json()) as { videoId: string };
    expect((await stores.jobs.get(videoId))?.options).toEqual({ quality: 4, loudness: -16, start: 0.5 });
  });

  it('takes option fields after the file too (a client orders the parts as it likes)', async () => {
    const body = new FormData();
    body.append('loudness', '-16');
    body.append('file', new Blob([video]), 'talk.mp4');
    body.append('quality', '4');
    const res = await post(appWith(), body);
    expect(res.status).toBe(202);
    const { videoId } = (await res.json()) as { videoId: string };
    expect((await stores.jobs.get(videoId))?.options).toEqual({ quality: 4, loudness: -16 });
  });

  it('gives an absolute status URL when it knows where the download function is', async () => {
    const res = await post(appWith({ downloadUrl: new URL('https://download.example/base') }), form(['file', new Blob([video]), 'a.mp4']));
    const { videoId, statusUrl } = (await res.json()) as { videoId: string; statusUrl: string };
    expect(statusUrl).toBe(`https://download.example/base/jobs/${videoId}`);
  });

  describe('bad input keeps nothing', () => {
    let before: string[];
    beforeEach(async () => {
      before = await storedFiles(dir);
    });
    const expectNothingNew = async () => {
      expect(await storedFiles(dir)).toEqual(before);
      expect(emitted).toEqual([]);
    };

    it.each(['malformed', 'expired', 'wrongKey', 'algNone', 'missing'])('%s token → 401', async (kind) => {
      const tokens = await badTokens(keys, await tempDir());
      const headers: Record<string, string> = kind === 'missing' ? {} : { authorization: `Bearer ${tokens[kind]}` };
      const res = await appWith().request('/upload', { method: 'POST', body: form(['file', new Blob([video]), 'a.mp4']), headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      await expectNothingNew();
    });

    it('no file → 400', async () => {
      const body = new FormData();
      body.append('note', 'just text');
      const res = await post(appWith(), body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/exactly one file/);
      await expectNothingNew();
    });

    it('two files → 400', async () => {
      const res = await post(appWith(), form(['a', new Blob([video]), 'a.mp4'], ['b', new Blob([video]), 'b.mp4']));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/exactly one file/);
      await expectNothingNew();
    });

    it('a form with too many fields → 400', async () => {
      const body = form(['file', new Blob([video]), 'a.mp4']);
      for (let i = 0; i < 25; i++) body.append(`note${i}`, 'x');
      const res = await post(appWith(), body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      await expectNothingNew();
    });

    it.each([
      ['quality', '11'],
      ['loudness', 'loud'],
      ['colour', 'blue'],
    ])('option %s=%s → 400 naming the field', async (field, value) => {
      const body = new FormData();
      body.append(field, value);
      body.append('file', new Blob([video]), 'a.mp4');
      const res = await post(appWith(), body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(((await res.json()) as { detail: string }).detail).toContain(`"${field}"`);
      await expectNothingNew();
    });

    it('a bad option field after the file → 400 naming it, and the stored file is removed', async () => {
      const body = form(['file', new Blob([video]), 'a.mp4']);
      body.append('quality', '11');
      const res = await post(appWith(), body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(((await res.json()) as { detail: string }).detail).toContain('"quality"');
      await expectNothingNew();
    });

    it('a text file → 415', async () => {
      const res = await post(appWith(), form(['file', new Blob(['hello, this is not a video\n'.repeat(500)]), 'notes.mp4']));
      expect(res.status).toBe(415);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      await expectNothingNew();
    });

    it('an empty file → 415', async () => {
      const res = await post(appWith(), form(['file', new Blob([]), 'empty.mp4']));
      expect(res.status).toBe(415);
      await expectNothingNew();
    });

    it('a body that is not multipart → 415', async () => {
      const res = await post(appWith(), video, { 'content-type': 'video/mp4' });
      expect(res.status).toBe(415);
      await expectNothingNew();
    });

    it('a malformed multipart body → 400', async () => {
      const res = await post(appWith(), '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nabc', {
        'content-type': 'multipart/form-data; boundary=xyz',
      });
      expect(res.status).toBe(400);
      await expectNothingNew();
    });

    it('over the limit while streaming → 413, no partial data left', async () => {
      const res = await post(appWith({ maxUploadBytes: video.length - 1 }), form(['file', new Blob([video]), 'big.mp4']));
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      await expectNothingNew();
      expect(log.lines.some((l) => l.msg === 'rejected' && l.status === 413)).toBe(true);
    });

    it('over the limit by its declared length → 413 before reading', async () => {
      const res = await post(appWith({ maxUploadBytes: 1000 }), form(['file', new Blob([video]), 'big.mp4']), {
        'content-length': String(video.length + 1000 + 64 * 1024),
      });
      expect(res.status).toBe(413);
      await expectNothingNew();
    });

    it('the broker unreachable → 503 with Retry-After, video and job removed', async () => {
      const app = appWith({ emit: () => Promise.reject(new Error('connection refused')) });
      const res = await post(app, form(['file', new Blob([video]), 'a.mp4']));
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('30');
      expect(await storedFiles(dir)).toEqual(before);
      const withdrawn = log.lines.find((l) => l.msg === 'event not delivered; upload withdrawn');
      expect(withdrawn).toBeDefined();
      const id = String(withdrawn!.eventId).split('.')[0]!;
      expect(await stores.jobs.get(id)).toBeNull();
    });
  });

  describe('per-user limits', () => {
    /** A user of their own per test, so counts start at zero. */
    const someone = async () => {
      const user = { id: `user-${randomUUID()}`, email: `${randomUUID()}@example.com`, role: 'user' as const };
      return { user, token: await keys.tokenFor(user) };
    };
    const postAs = (app: ReturnType<typeof createApp>, as: string, body: BodyInit = form(['file', new Blob([video]), 'a.mp4'])) =>
      app.request('/upload', { method: 'POST', body, headers: { authorization: `Bearer ${as}` } });
    const idOf = async (res: Response) => ((await res.json()) as { videoId: string }).videoId;
    const expectRefused = async (res: Response, limit: string) => {
      expect(res.status).toBe(429);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(((await res.json()) as { detail: string }).detail).toMatch(/limit is \d+\. .*Nothing was stored\./);
      expect(log.lines.findLast((l) => l.msg === 'upload limit reached')).toMatchObject({ limit });
    };

    it('refuses an upload over the in-flight limit (429, Retry-After), storing nothing; a finished conversion frees a place', async () => {
      const app = appWith({ limits: { inFlight: 2, perDay: 100 } });
      const { token: as } = await someone();
      const [first, second] = [await idOf(await postAs(app, as)), await idOf(await postAs(app, as))];
      const before = await storedFiles(dir);
      emitted = [];

      const refused = await postAs(app, as);
      await expectRefused(refused, 'MAX_UPLOADS_IN_FLIGHT');
      expect(refused.headers.get('retry-after')).toBe('30');
      expect(await storedFiles(dir)).toEqual(before);
      expect(emitted).toEqual([]);

      await stores.jobs.startConversion(first, 60_000); // converting still counts
      await expectRefused(await postAs(app, as), 'MAX_UPLOADS_IN_FLIGHT');
      await stores.jobs.finishConversion(first, { id: first, durationSeconds: 1, sizeBytes: 1 });
      expect((await postAs(app, as)).status).toBe(202);
      await stores.jobs.startConversion(second, 60_000);
      await stores.jobs.failConversion(second, 'The video has no audio track.');
      expect((await postAs(app, as)).status).toBe(202);
    });

    it('refuses an upload over the daily limit until the oldest upload of the day leaves the window', async () => {
      const app = appWith({ limits: { inFlight: 100, perDay: 2 } });
      const { token: as } = await someone();
      const first = await idOf(await postAs(app, as));
      await postAs(app, as);
      await stores.jobs.startConversion(first, 60_000);
      await stores.jobs.finishConversion(first, { id: first, durationSeconds: 1, sizeBytes: 1 }); // done, still today's

      const refused = await postAs(app, as);
      await expectRefused(refused, 'MAX_UPLOADS_PER_DAY');
      const created = (await stores.jobs.get(first))!.createdAt.getTime();
      const untilFree = (created + 24 * 3600_000 - Date.now()) / 1000;
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(Math.floor(untilFree));
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(Math.ceil(untilFree) + 1);
    });

    it('counts per user: someone else still uploads', async () => {
      const app = appWith({ limits: { inFlight: 1, perDay: 1 } });
      const [a, b] = [await someone(), await someone()];
      expect((await postAs(app, a.token)).status).toBe(202);
      expect((await postAs(app, a.token)).status).toBe(429);
      expect((await postAs(app, b.token)).status).toBe(202);
    });

    it('checks before reading the body', async () => {
      const app = appWith({ limits: { inFlight: 1, perDay: 100 } });
      const { token: as } = await someone();
      await postAs(app, as);
      let pulled = false;
      const body = new ReadableStream({ pull: () => void (pulled = true) }, { highWaterMark: 0 });
      const res = await app.request('/upload', {
        method: 'POST',
        body,
        duplex: 'half',
        headers: { authorization: `Bearer ${as}`, 'content-type': 'multipart/form-data; boundary=x' },
      } as RequestInit);
      expect(res.status).toBe(429);
      expect(pulled).toBe(false);
    });

    it('lets no more than the limit through when one user sends many uploads at once', async () => {
      const app = appWith({ limits: { inFlight: 2, perDay: 100 } });
      const { user, token: as } = await someone();
      const statuses = await Promise.all(Array.from({ length: 6 }, async () => (await postAs(app, as)).status));
      expect(statuses.sort()).toEqual([202, 202, 429, 429, 429, 429]);
      expect(await stores.jobs.countUploads(user.id, new Date(0))).toMatchObject({ total: 2, inFlight: 2 });
    });
  });

  describe('storage quota', () => {
    type QuotaProblem = { status: number; detail: string; storedBytes: number; quotaBytes: number };
    /** A user of their own per test, so what they store starts at zero. */
    const stranger = async () => {
      const user = { id: `user-${randomUUID()}`, email: `${randomUUID()}@example.com`, role: 'user' as const };
      return { user, token: await keys.tokenFor(user) };
    };
    const upload = (app: ReturnType<typeof createApp>, as: string, init: { body: BodyInit; headers?: Record<string, string> }) =>
      app.request('/upload', { method: 'POST', duplex: 'half', ...init, headers: { authorization: `Bearer ${as}`, ...init.headers } } as RequestInit);
    const videoForm = () => form(['file', new Blob([video]), 'a.mp4']);
    /** The form as a stream with no Content-Length (sent chunked): only streaming can find its size. */
    const chunked = () => {
      const res = new Response(videoForm());
      return { body: res.body!, headers: { 'content-type': res.headers.get('content-type')! } };
    };
    /** A body that records whether anyone read it, and never ends. */
    const untouched = () => {
      const read = { pulled: false };
      const body = new ReadableStream({ pull: () => void (read.pulled = true) }, { highWaterMark: 0 });
      return { read, body };
    };
    /** A user who stores one video (`video.length` bytes, put straight into the store), and an app with `quotaBytes`. */
    const storing = async (quotaBytes: number) => {
      const { user, token: as } = await stranger();
      const videoId = randomUUID();
      await stores.media.put('videos', videoId, { owner: user.id, filename: 'kept.mp4', contentType: 'video/mp4' }, Readable.from([video]));
      expect(await stores.media.storedBytes(user.id)).toBe(video.length);
      return { user, as, app: appWith({ quotaBytes }), videoId, files: await storedFiles(dir) };
    };
    /** Nothing stored, no job, no event: what every refusal must leave. */
    const expectNothingKept = async (user: { id: string }, files: string[]) => {
      expect(await stores.media.storedBytes(user.id)).toBe(video.length);
      expect(await storedFiles(dir)).toEqual(files);
      expect((await stores.jobs.countUploads(user.id, new Date(0))).total).toBe(0);
      expect(emitted).toEqual([]);
    };
    const expectQuotaProblem = async (res: Response, quotaBytes: number, detail: RegExp) => {
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const problem = (await res.json()) as QuotaProblem;
      expect(problem).toMatchObject({ status: 413, storedBytes: video.length, quotaBytes });
      expect(problem.detail).toMatch(detail);
      expect(problem.detail).toMatch(/; delete a job \(DELETE \/jobs\/\{id\}\) or wait until MP3s expire\. Nothing was stored\.$/);
      return problem;
    };
    const lastQuotaLog = () => log.lines.findLast((l) => l.msg === 'upload quota reached');

    it('takes uploads that fit under the quota (202)', async () => {
      const { user, token: as } = await stranger();
      const app = appWith({ quotaBytes: 3 * video.length });
      expect((await upload(app, as, { body: videoForm() })).status).toBe(202);
      expect((await upload(app, as, chunked())).status).toBe(202);
      expect(await stores.media.storedBytes(user.id)).toBe(2 * video.length);
    });

    it('refuses a user at the quota (or over it) before reading the body: 413 problem+json in words and bytes, nothing stored, no job', async () => {
      const quotaBytes = video.length;
      const { user, as, app, files } = await storing(quotaBytes);
      const { read, body } = untouched();
      const res = await upload(app, as, { body, headers: { 'content-type': 'multipart/form-data; boundary=x' } });
      const problem = await expectQuotaProblem(res, quotaBytes, /^You store \S+ \S+ of your \S+ \S+ quota;/);
      expect(problem.detail).toContain(`You store ${formatBytes(video.length)} of your ${formatBytes(quotaBytes)} quota`);
      expect(read.pulled).toBe(false);
      await expectNothingKept(user, files);
      expect(lastQuotaLog()).toMatchObject({ level: 'warn', userId: user.id, storedBytes: video.length, quotaBytes, reason: 'full' });
      // A quota lowered below what someone stores: refused the same way.
      await expectQuotaProblem(await upload(appWith({ quotaBytes: 1000 }), as, { body: videoForm() }), 1000, /^You store /);
      await expectNothingKept(user, files);
    });

    it('refuses an upload that goes past the quota while streaming (413 in quota words) and removes the partial file', async () => {
      const quotaBytes = video.length + Math.floor(video.length / 2);
      const { user, as, app, files } = await storing(quotaBytes);
      const res = await upload(app, as, chunked());
      const problem = await expectQuotaProblem(res, quotaBytes, /^The file is larger than the \S+ \S+ left of your \S+ \S+ quota \(you store \S+ \S+\);/);
      expect(problem.detail).toContain(`the ${formatBytes(quotaBytes - video.length)} left`);
      await expectNothingKept(user, files);
      expect(lastQuotaLog()).toMatchObject({ userId: user.id, storedBytes: video.length, quotaBytes, reason: 'streamed' });
    });

    it('refuses an upload whose Content-Length is over what is left before a byte is read', async () => {
      const quotaBytes = 2 * video.length;
      const { user, as, app, files } = await storing(quotaBytes);
      const { read, body } = untouched();
      const declared = video.length + 64 * 1024 + 1; // the file part cannot be smaller than this less the envelope
      const res = await upload(app, as, { body, headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(declared) } });
      await expectQuotaProblem(res, quotaBytes, /^This upload is \S+ \S+, more than the \S+ \S+ left of your \S+ \S+ quota \(you store \S+ \S+\);/);
      expect(read.pulled).toBe(false);
      await expectNothingKept(user, files);
      expect(lastQuotaLog()).toMatchObject({ userId: user.id, reason: 'content-length', declaredBytes: declared });
    });

    it('keeps the size limit its own answer when it is the tighter limit, or the file is over it anyway', async () => {
      const { user, as, files } = await storing(3 * video.length);
      // What is left (2 files) is more than the size limit (half a file): the size limit's words.
      const tight = appWith({ quotaBytes: 3 * video.length, maxUploadBytes: Math.floor(video.length / 2) });
      const streamed = (await (await upload(tight, as, chunked())).json()) as QuotaProblem;
      expect(streamed).toMatchObject({ status: 413, detail: expect.stringMatching(/larger than the limit of/) });
      expect(streamed).not.toHaveProperty('quotaBytes');
      // Less is left (500 bytes) than the size limit (1000), but the declared length is over the size limit itself.
      const loose = appWith({ quotaBytes: video.length + 500, maxUploadBytes: 1000 });
      const { body } = untouched();
      const declared = await upload(loose, as, { body, headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(1000 + 64 * 1024 + 1) } });
      expect(((await declared.json()) as QuotaProblem).detail).toMatch(/larger than the limit of 1000 bytes/);
      await expectNothingKept(user, files);
    });

    it('takes uploads again once the user deletes what they store', async () => {
      const { user, as, app, videoId } = await storing(video.length + Math.floor(video.length / 2));
      expect((await upload(app, as, { body: videoForm() })).status).toBe(413);
      emitted = [];
      await stores.media.delete('videos', videoId);
      expect(await stores.media.storedBytes(user.id)).toBe(0);
      expect((await upload(app, as, { body: videoForm() })).status).toBe(202);
      expect(await stores.media.storedBytes(user.id)).toBe(video.length);
    });

    it('answers 503 with Retry-After, storing nothing, when what the user stores cannot be counted', async () => {
      const { user, token: as } = await stranger();
      const media = Object.assign(Object.create(stores.media) as typeof stores.media, { storedBytes: () => Promise.reject(new Error('store down')) });
      const before = await storedFiles(dir);
      const res = await upload(appWith({ media }), as, { body: videoForm() });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('30');
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await storedFiles(dir)).toEqual(before);
      expect((await stores.jobs.countUploads(user.id, new Date(0))).total).toBe(0);
    });
  });
});
