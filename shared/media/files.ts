import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MediaExists, isMediaId, type Bucket, type ByteRange, type MediaInfo, type MediaMeta, type MediaStore } from './store';

/**
 * Media as plain files: `<root>/<bucket>/<id>` holds the bytes, `<id>.json` the metadata.
 * Bytes are written to a temp file and renamed into place, so readers never see a partial file.
 */
export class FileMediaStore implements MediaStore {
  /** Settles once the temp files a killed process left behind are removed (the names removed). */
  readonly swept: Promise<string[]>;
  private readonly tempDir: string;

  constructor(
    private readonly root: string,
    { staleTempMs = 60 * 60 * 1000 }: { staleTempMs?: number } = {},
  ) {
    this.tempDir = join(root, '.tmp');
    this.swept = sweepStale(this.tempDir, staleTempMs);
  }

  async put(bucket: Bucket, id: string, meta: MediaMeta, body: Readable): Promise<MediaInfo> {
    const dataPath = this.path(bucket, id);
    const tempDir = this.tempDir;
    await mkdir(tempDir, { recursive: true });
    await mkdir(join(this.root, bucket), { recursive: true });
    const temp = join(tempDir, `${id}.${randomUUID()}`);
    try {
      // 1 MiB of buffer lets the network keep reading while the disk writes.
      await pipeline(body, createWriteStream(temp, { flags: 'wx', highWaterMark: 1024 * 1024 }));
      const { size: length } = await stat(temp);
      const info: MediaInfo = { ...meta, id, bucket, length, createdAt: new Date() };
      // Written aside, then linked into place: a reader never sees half of it, and link, unlike
      // rename, fails when the item exists, so of two puts of one id exactly one wins.
      await writeFile(`${temp}.json`, JSON.stringify(info), { flag: 'wx' });
      try {
        await link(`${temp}.json`, `${dataPath}.json`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new MediaExists(bucket, id);
        throw err;
      }
      await rename(temp, dataPath);
      return info;
    } finally {
      await rm(temp, { force: true });
      await rm(`${temp}.json`, { force: true });
    }
  }

  async stat(bucket: Bucket, id: string): Promise<MediaInfo | null> {
    if (!isMediaId(id)) return null;
    const dataPath = this.path(bucket, id);
    try {
      const info = JSON.parse(await readFile(`${dataPath}.json`, 'utf8')) as MediaInfo;
      await access(dataPath);
      return { ...info, createdAt: new Date(info.createdAt) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async read(bucket: Bucket, id: string, range?: ByteRange): Promise<Readable> {
    // 1 MiB reads: a large file goes out in a thousand chunks, not sixteen thousand.
    const stream = createReadStream(this.path(bucket, id), { ...range, highWaterMark: 1024 * 1024 });
    await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject));
    return stream;
  }

  async delete(bucket: Bucket, id: string): Promise<void> {
    const dataPath = this.path(bucket, id);
    await rm(dataPath, { force: true });
    await rm(`${dataPath}.json`, { force: true });
  }

  async list(bucket: Bucket, { before, after, limit }: { before: Date; after?: string; limit: number }): Promise<MediaInfo[]> {
    const ids = (await this.ids(bucket)).filter((id) => after === undefined || id > after).sort();
    const page: MediaInfo[] = [];
    for (const id of ids) {
      if (page.length >= limit) break;
      const info = await this.stat(bucket, id);
      if (info && info.createdAt < before) page.push(info);
    }
    return page;
  }

  /** Reads every item's metadata: fine for one machine's files; GridFS answers from an index. */
  async storedBytes(owner: string): Promise<number> {
    let total = 0;
    for (const bucket of ['videos', 'mp3s'] as const) {
      for (const id of await this.ids(bucket)) {
        const info = await this.stat(bucket, id);
        if (info?.owner === owner) total += info.length;
      }
    }
    return total;
  }

  /** The ids that have metadata in a bucket's folder (a put writes it before its bytes). */
  private async ids(bucket: Bucket): Promise<string[]> {
    const names = await readdir(join(this.root, bucket)).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)).filter(isMediaId);
  }

  async close(): Promise<void> {
    await this.swept;
  }

  private path(bucket: Bucket, id: string): string {
    if (!isMediaId(id)) throw new Error(`not a media id: ${JSON.stringify(id)}`);
    return join(this.root, bucket, id);
  }
}

/**
 * A put removes its temp file even when it fails; only a process killed mid-write (SIGKILL, OOM)
 * leaves one. Other processes share the folder (upload and convert locally), so only files
 * untouched for `staleMs` go: a write in progress touches its file with every chunk, and
 * node:http gives a request 5 minutes to arrive. Best effort: a file that cannot be removed now
 * is tried again at the next start.
 */
async function sweepStale(tempDir: string, staleMs: number): Promise<string[]> {
  const names = await readdir(tempDir).catch(() => []);
  const removed: string[] = [];
  for (const name of names) {
    const path = join(tempDir, name);
    try {
      if (Date.now() - (await stat(path)).mtimeMs < staleMs) continue;
      await rm(path, { force: true });
      removed.push(name);
    } catch {
      // Gone already (another process swept it) or not ours to remove: leave it.
    }
  }
  return removed;
}
