import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { generateLinkKey, linkSigner, type Links } from '../../shared/links';
import { memoryLogger } from '../../shared/log';
import type { Stores } from '../../shared/stores';
import { fileStores } from '../../test/stores';
import { alice, badTokens, bob, tempDir, testKeys, type TestKeys } from '../../test/support';
import { createApp } from './app';

describe('download', () => {
  let stores: Stores;
  let keys: TestKeys;
  let links: Links;
  let app: ReturnType<typeof createApp>;
  let aliceToken: string;
  let bobToken: string;
  const id = randomUUID();
  const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));

  const get = (path: string, token = aliceToken, headers: Record<string, string> = {}, method = 'GET') =>
    app.request(path, { method, headers: { authorization: `Bearer ${token}`, ...headers } });

  beforeAll(async () => {
    const dir = await tempDir();
    keys = await testKeys(dir);
    stores = await fileStores(dir);
    links = await linkSigner({ keys: [generateLinkKey()] }, 7 * 24 * 3600);
    app = createApp({ ...stores, verify: keys.verify, links, log: memoryLogger() });
    aliceToken = await keys.tokenFor(alice);
    bobToken = await keys.tokenFor(bob);
    await stores.jobs.create({ id, owner: alice.id, filename: 'Café talk.mp4' });
    await stores.jobs.startConversion(id, 60_000);
    await stores.media.put('mp3s', id, { owner: alice.id, filename: 'Café talk.mp3', contentType: 'audio/mpeg', sourceVideoId: id }, Readable.from([bytes]));
    await stores.jobs.finishConversion(id, { id, durationSeconds: 12.5, sizeBytes: bytes.length });
  });

  it('streams the owner\'s MP3 as an attachment with its length and validators', async () => {
    const res = await get(`/download/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/mpeg');
    expect(res.headers.get('content-length')).toBe('5000');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('etag')).toMatch(/^"mp3-/);
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="Cafe talk.mp3"; filename*=UTF-8''Caf%C3%A9%20talk.mp3`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
  });

  it('serves the original system\'s /download?fid= form', async () => {
    const res = await get(`/download?fid=${id}`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
  });

  it('answers HEAD with the headers and no body', async () => {
    const res = await get(`/download/${id}`, aliceToken, {}, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('5000');
    expect(await res.text()).toBe('');
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=4900-', 4900, 4999],
    ['bytes=-100', 4900, 4999],
    ['bytes=4990-9999', 4990, 4999],
    // RFC 9110 §14.1.2: a suffix longer than the file asks for all of it.
    ['bytes=-9999', 0, 4999],
  ])('answers Range %s with 206 and those bytes', async (range, start, end) => {
    const res = await get(`/download/${id}`, aliceToken, { range });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/5000`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes.subarray(start, end + 1));
  });

  it('answers a Range past the end with 416 and the real length', async () => {
    const res = await get(`/download/${id}`, aliceToken, { range: 'bytes=5000-6000' });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */5000');
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('ignores a malformed or invalid Range and an outdated If-Range, sending the whole file', async () => {
    expect((await get(`/download/${id}`, aliceToken, { range: 'lines=1-2' })).status).toBe(200);
    const backwards = await get(`/download/${id}`, aliceToken, { range: 'bytes=100-50' }); // RFC 9110 §14.1.1: invalid
    expect(backwards.status).toBe(200);
    expect(Buffer.from(await backwards.arrayBuffer())).toEqual(bytes);
    expect((await get(`/download/${id}`, aliceToken, { range: 'bytes=0-1', 'if-range': '"old"' })).status).toBe(200);
  });

  it('answers 304 when the client has this version', async () => {
    const etag = (await get(`/download/${id}`)).headers.get('etag')!;
    const res = await get(`/download/${id}`, aliceToken, { 'if-none-match': etag });
    expect(res.status).toBe(304);
  });

  it.each([
    ['another user\'s MP3', () => get(`/download/${id}`, bobToken)],
    ['another user\'s MP3 by fid', () => get(`/download?fid=${id}`, bobToken)],
    ['an unknown id', () => get(`/download/${randomUUID()}`)],
    ['an id that is no id', () => get('/download/..%2F..%2Fetc%2Fpasswd')],
    ['no fid', () => get('/download')],
    ['another user\'s job', () => get(`/jobs/${id}`, bobToken)],
    ['an unknown job', () => get(`/jobs/${randomUUID()}`)],
  ])('answers %s with the same 404', async (_case, request) => {
    const res = await request();
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it.each(['malformed', 'expired', 'wrongKey', 'algNone'])('answers a %s token with 401', async (kind) => {
    const tokens = await badTokens(keys, await tempDir());
    for (const path of [`/download/${id}`, `/download?fid=${id}`, `/jobs/${id}`]) {
      const res = await get(path, tokens[kind]);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  it('answers a missing token with 401 and a Bearer challenge', async () => {
    const res = await app.request(`/download/${id}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="earshot"');
  });

  it('reports the job\'s status and, once converted, where to download', async () => {
    const res = await get(`/jobs/${id}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      id,
      status: 'converted',
      filename: 'Café talk.mp4',
      mp3: { id, durationSeconds: 12.5, sizeBytes: 5000 },
      downloadUrl: `/download/${id}`,
      signedUrl: expect.stringMatching(new RegExp(`^/download/${id}\\?sig=[\\w-]+\\.[\\w-]+\\.[\\w-]+$`)),
    });
  });

  it('shows the options the upload asked for and the audio track the MP3 was made from', async () => {
    const other = randomUUID();
    await stores.jobs.create({ id: other, owner: alice.id, filename: 'two tracks.mkv', options: { track: 2, channels: 'mono', cover: false } });
    await stores.jobs.startConversion(other, 60_000);
    await stores.jobs.finishConversion(other, { id: other, durationSeconds: 3, sizeBytes: 100, audioTrack: 2 });
    const body = await (await get(`/jobs/${other}`)).json();
    expect(body).toMatchObject({ options: { track: 2, channels: 'mono', cover: false }, mp3: { id: other, audioTrack: 2 } });
  });

  describe('signed links', () => {
    const open = (path: string, headers: Record<string, string> = {}, method = 'GET') => app.request(path, { method, headers });
    const signed = async (mp3 = id, now = new Date()) => `/download/${mp3}?sig=${(await links.sign(mp3, now)).token}`;
    /** The link with one character of its signature changed. */
    const changed = (path: string) => {
      const i = path.lastIndexOf('.') + 4;
      return path.slice(0, i) + (path[i] === 'A' ? 'B' : 'A') + path.slice(i + 1);
    };

    it('serve the MP3 with no Authorization header, exactly as the Bearer route does', async () => {
      const path = await signed();
      const res = await open(path);
      expect(res.status).toBe(200);
      const byBearer = await get(`/download/${id}`);
      for (const header of ['content-type', 'content-length', 'content-disposition', 'accept-ranges', 'etag', 'last-modified']) {
        expect(res.headers.get(header), header).toBe(byBearer.headers.get(header));
      }
      expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);

      const ranged = await open(path, { range: 'bytes=100-199' });
      expect(ranged.status).toBe(206);
      expect(ranged.headers.get('content-range')).toBe('bytes 100-199/5000');
      expect(Buffer.from(await ranged.arrayBuffer())).toEqual(bytes.subarray(100, 200));
      const head = await open(path, {}, 'HEAD');
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe('5000');
      expect(await head.text()).toBe('');
      expect((await open(path, { 'if-none-match': res.headers.get('etag')! })).status).toBe(304);
    });

    it('come fresh with the job, and work as given', async () => {
      const before = Date.now();
      const job = (await (await get(`/jobs/${id}`)).json()) as { signedUrl: string; linkExpiresAt: string };
      const expires = Date.parse(job.linkExpiresAt);
      expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 7 * 24 * 3600 * 1000);
      const res = await open(job.signedUrl);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
    });

    const problem = async (res: Response, status: number) => {
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      return (await res.json()) as { detail: string; expiredAt?: string };
    };

    it('answer a changed signature, or one from another key, with 404 saying the link is not valid', async () => {
      const other = await linkSigner({ keys: [generateLinkKey()] }, 3600);
      for (const path of [changed(await signed()), `/download/${id}?sig=${(await other.sign(id)).token}`, `/download/${id}?sig=`, `/download/${id}?sig=${await keys.tokenFor(alice)}`]) {
        expect((await problem(await open(path), 404)).detail, path).toMatch(/link is not valid/);
      }
    });

    it('answer a link for another MP3 with 404 saying so', async () => {
      const elsewhere = randomUUID();
      const token = (await links.sign(elsewhere)).token;
      expect((await problem(await open(`/download/${id}?sig=${token}`), 404)).detail).toBe('This download link is for another MP3.');
    });

    it('answer an expired link with 410 saying when it expired and how to get a fresh one', async () => {
      const sentLongAgo = new Date(Date.UTC(2026, 0, 1, 9, 30));
      const body = await problem(await open(await signed(id, sentLongAgo)), 410);
      expect(body.detail).toBe('This download link expired on 2026-01-08 09:30 UTC. Sign in to earshot for a fresh link.');
      expect(body.expiredAt).toBe('2026-01-08T09:30:00.000Z');
    });

    it('answer a valid link to an MP3 that is no more with 404', async () => {
      await problem(await open(await signed(randomUUID())), 404);
    });

    it('leave Bearer requests as they were: the token decides, whatever the query says', async () => {
      const path = await signed();
      expect((await get(`/download/${id}?sig=made-up`)).status).toBe(200);
      expect((await get(path, bobToken)).status).toBe(404);
      expect((await get(path, 'not-a-jwt')).status).toBe(401);
      // Signed links are for /download/:id alone.
      expect((await open(`/download?fid=${id}&sig=${path.split('sig=')[1]}`)).status).toBe(401);
    });
  });

  it('keeps the exact UTF-8 name in filename*, without control or bidi characters that would split or disguise the header', async () => {
    const named = randomUUID();
    const filename = "Fête d'été — 2026\r\nSet-Cookie: x=1 \u202egpm.exe.mp3";
    await stores.media.put('mp3s', named, { owner: alice.id, filename, contentType: 'audio/mpeg', sourceVideoId: named }, Readable.from([bytes]));
    const res = await get(`/download/${named}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toBeNull();
    const disposition = res.headers.get('content-disposition')!;
    expect(disposition).toMatch(/^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/);
    const exact = decodeURIComponent(disposition.split("filename*=UTF-8''")[1]!);
    expect(exact).toBe("Fête d'été — 2026Set-Cookie: x=1 gpm.exe.mp3");
  });

  it('answers another method on a known path with 405 and Allow', async () => {
    for (const [path, allow] of [[`/download/${id}`, 'GET, HEAD'], [`/jobs/${id}`, 'GET, HEAD, DELETE']] as const) {
      const res = await get(path, aliceToken, {}, 'PUT');
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});
