/**
 * No input ends a process: malformed, truncated and abandoned requests are posted to ONE real
 * upload process (the bundle, as Knative runs it), with an honest upload in flight beside them.
 * Each costs only its own request; afterwards the same process still accepts an upload, the
 * honest upload completes, and the store's temp folder holds no partial file.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenIssuer } from '../functions/login/tokens';
import { loadSigningKey } from '../shared/keys';
import { makeVideo } from './media';
import { startBundle, type StartedFunction } from './processes';
import { audience, tempDir } from './support';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

const boundary = 'B';
const multipart = `multipart/form-data; boundary=${boundary}`;
const maxUploadBytes = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('hostile request bodies against one upload process', () => {
  let dataDir: string;
  let upload: StartedFunction;
  let sink: Server;
  let token: string;
  let video: Buffer;

  /**
   * POSTs /upload, writing `chunks` with a pause between them. `abort` destroys the connection
   * after the last chunk instead of waiting for an answer (the client went away): null.
   */
  const post = (
    chunks: (string | Buffer)[],
    { contentType = multipart, length = 'exact' as 'exact' | 'chunked' | number, abort = false, pauseMs = 50 } = {},
  ): Promise<Answer | null> =>
    new Promise((resolve, reject) => {
      const bytes = chunks.map((chunk) => Buffer.from(chunk));
      const total = bytes.reduce((sum, chunk) => sum + chunk.length, 0);
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': contentType };
      if (length === 'exact') headers['content-length'] = String(total);
      else if (typeof length === 'number') headers['content-length'] = String(length);
      const req = request(`${upload.url}/upload`, { method: 'POST', headers });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', () => resolve(null));
      });
      req.on('error', (err) => (abort ? resolve(null) : reject(err)));
      void (async () => {
        for (const chunk of bytes) {
          if (req.destroyed) return;
          req.write(chunk);
          await sleep(pauseMs);
        }
        if (abort) {
          req.destroy();
          resolve(null);
        } else req.end();
      })();
    });

  /** Sends `raw` bytes as they are, for what no HTTP client would send; the answer as text. */
  const rawHttp = (raw: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const { port } = new URL(upload.url);
      const socket = connect(Number(port), '127.0.0.1', () => socket.end(raw));
      let text = '';
      socket.setEncoding('utf8').on('data', (chunk) => (text += chunk));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });

  const head = (disposition: string, more = '') => `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${more}\r\n`;
  const filePart = (name = 'v.mp4') => head(`form-data; name="file"; filename="${name}"`, 'Content-Type: video/mp4\r\n');
  const end = `\r\n--${boundary}--\r\n`;
  const tempFiles = async () => readdir(join(dataDir, 'store', 'media', '.tmp')).catch(() => []);

  beforeAll(async () => {
    dataDir = await tempDir('hostile-');
    const key = await loadSigningKey(undefined, dataDir);
    token = (await tokenIssuer(key, audience, 600)({ id: 'u1', email: 'u1@example.com', role: 'user' })).token;
    video = await readFile(await makeVideo(join(dataDir, 'clip.mp4'), { seconds: 1 }));
    sink = createServer((req, res) => req.resume().on('end', () => res.writeHead(202).end()));
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    upload = await startBundle('upload', {
      DATA_DIR: dataDir,
      K_SINK: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`,
      MAX_UPLOAD_BYTES: String(maxUploadBytes),
      // One user sends every request here; per-user upload limits are not what is tested.
      MAX_UPLOADS_PER_DAY: '100000',
      MAX_UPLOADS_IN_FLIGHT: '1000',
      LOG_LEVEL: 'info',
    });
  });
  afterAll(async () => {
    await upload?.stop();
    await new Promise((resolve) => sink?.close(resolve));
  });

  // [what, request, the answer expected]
  const refused: [string, () => Promise<Answer | null>, number][] = [
    ['the attacker’s body: busboy errors twice', () => post([`--${boundary}\r\n-1--${boundary}--\r\n`]), 400],
    ['a part header without a colon', () => post([`--${boundary}\r\nnot a header\r\n\r\nxyz${end}`]), 400],
    ['a body that ends inside the part headers', () => post([`--${boundary}\r\nContent-Disposition: form-da`]), 400],
    ['a body that ends mid-part, the file already being stored', () => post([filePart(), video.subarray(0, 20_000)]), 400],
    ['a body that ends mid-part after a 415 was decided', () => post([filePart('notes.mp4'), 'not a video\n'.repeat(2000), 'more text'], { pauseMs: 300 }), 400],
    ['no boundary parameter', () => post([filePart(), video, end], { contentType: 'multipart/form-data; charset=utf-8' }), 400],
    ['an empty boundary', () => post([filePart(), video, end], { contentType: 'multipart/form-data; boundary=' }), 400],
    ['a boundary the body does not use', () => post([filePart().replaceAll('--B', '--C'), video, end.replace('--B', '--C')]), 400],
    ['a part-header flood (32 KiB of headers in one part)', () => post([`--${boundary}\r\n${'X-Flood: yes\r\n'.repeat(2400)}\r\n`, video, end]), 400],
    ['many header pairs, then no end', () => post([head('form-data; name="file"; filename="v.mp4"', 'X-A: b\r\n'.repeat(40)), video.subarray(0, 5000)]), 400],
    ['a part without a name or file name', () => post([head('form-data'), 'text', end]), 400],
    ['a part that is not form-data', () => post([head('attachment; filename="v.mp4"'), video, end]), 400],
    ['a file part with filename* garbage', () => post([head("form-data; name=\"file\"; filename*=UTF-8''%ZZ%E9%"), video, end]), 400],
    ['a file part with a filename* in an unknown charset', () => post([head("form-data; name=\"file\"; filename*=x-no-such-charset''v.mp4"), video, end]), 400],
    ['only the closing boundary', () => post([`--${boundary}--\r\n`]), 400],
    ['binary noise', () => post([Buffer.from(Array.from({ length: 65_536 }, (_, i) => (i * 7919) % 256))]), 400],
    ['two file parts', () => post([filePart('a.mp4'), video, `\r\n`, filePart('b.mp4'), video, end]), 400],
    ['over the size limit with no declared length', () => post([filePart(), video, Buffer.alloc(maxUploadBytes), end], { length: 'chunked' }), 413],
    ['a declared length the body never reaches, ended by the client', () => post([filePart(), video.subarray(0, 5000)], { length: 100_000, abort: true }), 0],
    ['a chunked body abandoned mid-part', () => post([filePart(), video.subarray(0, 30_000)], { length: 'chunked', abort: true }), 0],
    ['a client gone inside the part headers', () => post([`--${boundary}\r\nContent-Dispo`], { length: 'chunked', abort: true }), 0],
    ['a client gone while going over the limit', () => post([filePart(), video, Buffer.alloc(maxUploadBytes / 2), Buffer.alloc(maxUploadBytes / 2)], { length: 'chunked', abort: true }), 0],
  ];

  it('answers each malformed body with a problem, or nothing to a client that left, and keeps serving', async () => {
    // An honest upload in flight all along: a crash would take it down too.
    const slow = post([filePart('honest.mp4'), video.subarray(0, 1000), ...Array.from({ length: 20 }, (_, i) => video.subarray(1000 + i * 100, 1000 + (i + 1) * 100)), video.subarray(3000), end], { pauseMs: 100 });

    for (const [what, send, expected] of refused) {
      const answer = await send().catch((err: Error) => {
        throw new Error(`${what}: ${err.message}`);
      });
      if (expected === 0) {
        expect(answer, what).toBeNull();
        continue;
      }
      expect({ what, status: answer?.status }).toEqual({ what, status: expected });
      expect(answer!.headers['content-type'], what).toBe('application/problem+json');
      expect(upload.child.exitCode, what).toBeNull();
    }

    const honest = await slow;
    expect(honest?.status).toBe(202);
    // …and keeps a UTF-8 file name exactly, as curl -F and browsers send it.
    const name = "Fête d'été — 2026.mov";
    const fresh = await post([filePart(name), video, end]);
    expect(fresh?.status).toBe(202);
    const { videoId } = JSON.parse(fresh!.body) as { videoId: string };
    const stored = JSON.parse(await readFile(join(dataDir, 'store', 'media', 'videos', `${videoId}.json`), 'utf8')) as { filename: string };
    expect(stored.filename).toBe(name);

    // The abandoned requests are cleaned up as their streams fail, just after the client left.
    for (let i = 0; i < 50 && (await tempFiles()).length > 0; i++) await sleep(100);
    expect(await tempFiles()).toEqual([]);
    // Handled where they happen, not by the process-level guard of shared/serve.ts.
    expect(upload.lines.filter((line) => line.level === 'error')).toEqual([]);
    expect(upload.child.exitCode).toBeNull();
  });

  it('answers what Node refuses before the app sees it as problem+json, and keeps serving', async () => {
    const tooLarge = await rawHttp(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(tooLarge).toMatch(/^HTTP\/1\.1 431 /);
    expect(tooLarge).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(tooLarge.split('\r\n\r\n')[1]!)).toMatchObject({ status: 431, title: 'Request Header Fields Too Large' });

    const badLine = await rawHttp('NOT HTTP AT ALL\r\n\r\n');
    expect(badLine).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(badLine.split('\r\n\r\n')[1]!)).toMatchObject({ status: 400, title: 'Bad Request' });

    const brokenChunks = await rawHttp(
      `POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: ${multipart}\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n${filePart().slice(0, 16)}\r\nZZ\r\n`,
    );
    expect(brokenChunks).toMatch(/^HTTP\/1\.1 4\d\d /);

    expect((await fetch(`${upload.url}/healthz`)).status).toBe(200);
    expect(upload.lines.some((line) => line.msg === 'client error' && line.status === 431)).toBe(true);
    expect(upload.lines.filter((line) => line.level === 'error')).toEqual([]);
  });
});
