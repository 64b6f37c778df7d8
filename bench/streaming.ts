/**
 * B3: upload then download of a large file through the upload and download functions (each a
 * process), against a plain stream copy of the same bytes to and from the same disk; and the
 * peak RSS of each function. On MongoDB also the server's own ceiling: the same store code
 * writing and reading GridFS in this process, without HTTP or functions.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { MongoClient } from 'mongodb';
import { tokenIssuer } from '../functions/login/tokens';
import { loadSigningKey } from '../shared/keys';
import { openStores } from '../shared/stores';
import { startBundle } from '../test/processes';
import { mediaBytes, uploadStream } from '../test/streams';
import { benchVideo } from './inputs';
import { interleaved, time, type Row } from './measure';

const MiB = 1024 * 1024;

/**
 * What serves a MongoDB URL, for labels: "FerretDB on PostgreSQL" (FerretDB's serverStatus
 * gives its pid, and the command line of a server on this machine its backend), "MongoDB 7.0.2";
 * null when nothing answers within 2 s.
 */
export async function mongoServerName(url: string): Promise<string | null> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 2000 });
  try {
    await client.connect();
    const status = await client.db('admin').command({ serverStatus: 1 });
    if (typeof status.ferretdbVersion !== 'string') return `MongoDB ${status.version}`;
    // tools/ferretdb embeds FerretDB as a library, which reports its version as "unknown".
    const name = /^v?\d/.test(status.ferretdbVersion) ? `FerretDB ${status.ferretdbVersion.replace(/^v/, '')}` : 'FerretDB';
    const local = ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);
    const argv = local ? `\0${await readFile(`/proc/${status.pid}/cmdline`, 'utf8').catch(() => '')}` : '';
    if (/\0--?handler[=\0]postgresql\0/.test(argv)) return `${name} on PostgreSQL`;
    // tools/ferretdb's launcher: SQLite unless told otherwise (-data is its SQLite directory).
    if (/\0--?handler[=\0]sqlite\0/.test(argv) || /\0-data\0/.test(argv)) return `${name} on SQLite`;
    return name;
  } catch {
    return null;
  } finally {
    await client.close();
  }
}

const devNull = () => new Writable({ write: (_chunk, _enc, done) => done() });

export async function benchStreaming({ size, runs, mediaUrl, label }: { size: number; runs: number; mediaUrl?: string; label: string }): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-stream-'));
  const sink = createServer((req, res) => req.resume().on('end', () => res.writeHead(202).end()));
  try {
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const media = mediaUrl ?? pathToFileURL(join(dir, 'store')).href;
    const env = { DATA_DIR: dir, MEDIA_URL: media, K_SINK: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`, MAX_UPLOAD_BYTES: String(size + MiB) };
    const key = await loadSigningKey(undefined, dir);
    const token = (await tokenIssuer(key, { issuer: 'earshot', audience: 'earshot' }, 3600)({ id: 'bench', email: 'bench@example.com', role: 'user' })).token;
    const head = (await readFile(await benchVideo(2))).subarray(0, 8192);
    const stores = await openStores(new URL(media));
    const peaks = { upload: 0, download: 0 };

    const baseline = () =>
      time(async () => {
        const file = join(dir, 'plain-copy');
        await pipeline(mediaBytes(head, size), createWriteStream(file));
        await pipeline(createReadStream(file), devNull());
        await rm(file);
      });

    const subject = async () => {
      const upload = await startBundle('upload', env);
      const download = await startBundle('download', env);
      let videoId = '';
      const up = await time(async () => {
        const res = await uploadStream(upload.url, token, mediaBytes(head, size));
        if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
        videoId = ((await res.json()) as { videoId: string }).videoId;
      });
      // The MP3 to download: the same bytes, stored directly (not part of the measurement).
      await stores.media.put('mp3s', videoId, { owner: 'bench', filename: 'big.mp3', contentType: 'audio/mpeg', sourceVideoId: videoId }, mediaBytes(head, size));
      const down = await time(
        () =>
          new Promise<void>((resolve, reject) => {
            // Plain http.get, piped: the client should cost less than what it measures.
            get(`${download.url}/download/${videoId}`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
              if (res.statusCode !== 200) return reject(new Error(`download answered ${res.statusCode}`));
              pipeline(res, devNull()).then(resolve, reject);
            }).on('error', reject);
          }),
      );
      peaks.upload = Math.max(peaks.upload, await upload.peakRss());
      peaks.download = Math.max(peaks.download, await download.peakRss());
      await Promise.all([upload.stop(), download.stop()]);
      await stores.media.delete('videos', videoId);
      await stores.media.delete('mp3s', videoId);
      return up + down;
    };

    const m = await interleaved(runs, baseline, subject);
    const mbps = (ms: number, bytes = size) => (2 * bytes) / 1e6 / (ms / 1000);
    const ratio = mbps(m.subject) / mbps(m.baseline);

    // The server's ceiling: the store itself, in this process, on at most 256 MiB.
    let ceiling: string | undefined;
    if (mediaUrl) {
      const bytes = Math.min(size, 256 * MiB);
      const id = randomUUID();
      const up = await time(() => stores.media.put('videos', id, { owner: 'bench', filename: 'ceiling.mp4', contentType: 'video/mp4' }, mediaBytes(head, bytes)));
      const down = await time(async () => pipeline(await stores.media.read('videos', id), devNull()));
      await stores.media.delete('videos', id);
      const each = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
      const sizeOf = bytes >= 1024 * MiB ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`;
      ceiling = `the store alone, in this process (${sizeOf}): up ${each(up)}, down ${each(down)}, both ${mbps(up + down, bytes).toFixed(0)} MB/s`;
    }
    const sizeLabel = size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`;
    return [
      {
        id: 'B3',
        measure: `stream ${sizeLabel} up + down, ${label}`,
        value: mbps(m.subject),
        unit: 'MB/s',
        baseline: { name: 'plain stream copy', value: mbps(m.baseline) },
        ratio,
        target: '≥ 0.5×',
        met: ratio >= 0.5,
        ...(ceiling && { note: ceiling }),
      },
      ...(['upload', 'download'] as const).map((fn) => ({
        id: 'B3',
        measure: `peak RSS of ${fn}, ${label}`,
        value: peaks[fn] / 1e6,
        unit: 'MB',
        target: '≤ 150 MB',
        met: peaks[fn] / 1e6 <= 150,
      })),
    ];
  } finally {
    sink.close();
    await rm(dir, { recursive: true, force: true });
  }
}
