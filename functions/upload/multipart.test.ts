import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { Problem } from '../../shared/problem';
import { receiveOneFile } from './multipart';

const name = 'Fête d’été — 2026.mov'.replace('’', "'"); // Fête d'été — 2026.mov
const bytes = Buffer.from('the bytes of a video');

const post = (body: BodyInit, contentType?: string) =>
  new Request('http://upload.test/upload', { method: 'POST', body, ...(contentType && { headers: { 'content-type': contentType } }) });

/** A multipart body exactly as written: a part with these Content-Disposition parameters. */
const rawPart = (dispositionParams: string, content: Buffer = bytes) =>
  post(
    Buffer.concat([
      Buffer.from(`--b\r\nContent-Disposition: form-data; name="file"; ${dispositionParams}\r\nContent-Type: video/quicktime\r\n\r\n`, 'utf8'),
      content,
      Buffer.from('\r\n--b--\r\n'),
    ]),
    'multipart/form-data; boundary=b',
  );

/** Receives into memory; `discarded` lists what the failed request had kept. */
function receiver(maxFileBytes = 1024) {
  const discarded: string[] = [];
  const receive = (request: Request) =>
    receiveOneFile(
      request,
      { maxFileBytes },
      async (file) => ({ filename: file.filename, bytes: await buffer(file.stream) }),
      async (stored) => void discarded.push(stored.filename),
    );
  return { receive, discarded };
}

describe('receiving the one file of a multipart body', () => {
  describe('keeps the file name exactly', () => {
    it('as a browser or curl -F sends it: UTF-8 in filename="…"', async () => {
      const form = new FormData();
      form.append('file', new Blob([bytes]), name);
      expect(await receiver().receive(post(form))).toEqual({ filename: name, bytes });
    });

    it('as RFC 5987 filename*=UTF-8\'\'…, which wins over the ASCII fallback', async () => {
      const encoded = encodeURIComponent(name).replaceAll("'", '%27');
      const { filename } = await receiver().receive(rawPart(`filename="Fete d'ete - 2026.mov"; filename*=UTF-8''${encoded}`));
      expect(filename).toBe(name);
    });

    it('in any script, and without the client\'s folders', async () => {
      for (const [sent, kept] of [
        ['会議の録画.mp4', '会議の録画.mp4'],
        ['C:\\Users\\me\\Видео.mp4', 'Видео.mp4'],
        ['../../etc/مقطع.mp4', 'مقطع.mp4'],
      ]) {
        expect((await receiver().receive(rawPart(`filename="${sent}"`))).filename).toBe(kept);
      }
    });
  });

  it.each([
    ['busboy erring twice (the attacker’s body)', '--b\r\n-1--b--\r\n'],
    ['a body that ends mid-part', `--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n${'x'.repeat(100)}`],
    ['a part header too large', `--b\r\n${'X-A: b\r\n'.repeat(3000)}\r\nabc\r\n--b--\r\n`],
    ['filename* garbage', `--b\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''%ZZ\r\n\r\nabc\r\n--b--\r\n`],
  ])('answers %s with one 400 and keeps nothing', async (_what, body) => {
    const { receive, discarded } = receiver();
    const failure = await receive(post(body, 'multipart/form-data; boundary=b')).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(Problem);
    expect((failure as Problem).status).toBe(400);
    expect(discarded).toEqual([]);
  });

  it('hands a file already stored to discard, and waits for it, before answering 400 for a second one', async () => {
    const { receive, discarded } = receiver();
    const form = new FormData();
    form.append('a', new Blob([bytes]), 'first.mp4');
    form.append('b', new Blob([bytes]), 'second.mp4');
    const failure = await receive(post(form)).catch((err: unknown) => err);
    expect((failure as Problem).status).toBe(400);
    expect(discarded).toEqual(['first.mp4']);
  });

  it('answers 413 when the file goes over the limit while it streams', async () => {
    const failure = await receiver(10).receive(rawPart('filename="big.mp4"', Buffer.alloc(100))).catch((err: unknown) => err);
    expect((failure as Problem).status).toBe(413);
  });

  it('takes a file of exactly the limit, and refuses one byte more', async () => {
    const whole = await receiver(100).receive(rawPart('filename="exact.mp4"', Buffer.alloc(100)));
    expect(whole.bytes).toHaveLength(100);
    const failure = await receiver(100).receive(rawPart('filename="over.mp4"', Buffer.alloc(101))).catch((err: unknown) => err);
    expect((failure as Problem).status).toBe(413);
  });
});
