/**
 * Memory does not grow with file size: 16 MiB and 256 MiB go up through the upload function and
 * down through the download function, each a process of its own on the MongoDB adapter (GridFS),
 * and each process's peak RSS is compared.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tokenIssuer } from '../functions/login/tokens';
import { loadSigningKey } from '../shared/keys';
import { closeMongo, mongoDb } from '../shared/mongo';
import { GridFSMediaStore } from '../shared/media/gridfs';
import { makeVideo } from './media';
import { dropDatabase, mongoReachable, mongoTestUrl } from './mongo';
import { startBundle } from './processes';
import { mediaBytes, uploadStream } from './streams';
import { describeWithService } from './services';
import { audience, tempDir } from './support';

const MiB = 1024 * 1024;
const url = mongoTestUrl('memory');

describeWithService('the MongoDB-wire server', await mongoReachable(), 'memory with file size (MongoDB adapter)', () => {
  let dataDir: string;
  let token: string;
  let head: Buffer;
  let sinkUrl: string;
  const sink = createServer((req, res) => req.resume().on('end', () => res.writeHead(202).end()));
  const peaks: Record<string, Record<number, number>> = { upload: {}, download: {} };

  beforeAll(async () => {
    dataDir = await tempDir();
    const key = await loadSigningKey(undefined, dataDir);
    token = (await tokenIssuer(key, audience, 3600)({ id: 'memory-user', email: 'memory@example.com', role: 'user' })).token;
    head = (await readFile(await makeVideo(join(dataDir, 'head.mp4'), { seconds: 1 }))).subarray(0, 8192);
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    sink.close();
    await closeMongo(url);
    await dropDatabase(url);
  });

  // 256 MiB: a body held in memory would add ~240 MB, well past the 64 MB allowed; GridFS on
  // FerretDB moves ~20 MB/s, so the timeout leaves room for a machine at load 10.
  it.each([16, 256])('uploads and downloads %i MiB with flat memory', { timeout: 900_000 }, async (mib) => {
    const size = mib * MiB;
    const env = { DATA_DIR: dataDir, MEDIA_URL: url, K_SINK: sinkUrl, MAX_UPLOAD_BYTES: String(1024 * MiB) };

    const upload = await startBundle('upload', env);
    const uploaded = await uploadStream(upload.url, token, mediaBytes(head, size));
    expect(uploaded.status, JSON.stringify(upload.lines.filter((l) => l.level !== "info"))).toBe(202);
    const { videoId } = (await uploaded.json()) as { videoId: string };
    peaks.upload![mib] = await upload.peakRss();
    await upload.stop();

    // The MP3 the download function serves, written straight into GridFS by the test.
    const media = new GridFSMediaStore(async () => (await mongoDb(url)).db);
    expect((await media.stat('videos', videoId))!.length).toBe(size);
    await media.put('mp3s', videoId, { owner: 'memory-user', filename: 'big.mp3', contentType: 'audio/mpeg', sourceVideoId: videoId }, mediaBytes(head, size));

    const download = await startBundle('download', env);
    const res = await fetch(`${download.url}/download/${videoId}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    let received = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) received += chunk.length;
    expect(received).toBe(size);
    peaks.download![mib] = await download.peakRss();
    await download.stop();
  });

  it('keeps each function\'s peak RSS within 64 MB between 16 MiB and 256 MiB', () => {
    for (const fn of ['upload', 'download']) {
      const [small, large] = [peaks[fn]![16], peaks[fn]![256]];
      if (small === undefined || large === undefined) throw new Error(`${fn}: a transfer above did not finish, nothing to compare`);
      expect(large - small, `${fn}: ${(small / MiB).toFixed(0)} MiB → ${(large / MiB).toFixed(0)} MiB`).toBeLessThan(64 * 1e6);
    }
  });
});
