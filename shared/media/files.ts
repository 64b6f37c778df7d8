import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MediaExists, isMediaId, type Bucket, type ByteRange, type MediaInfo, type MediaMeta, type MediaStore } from './store';

/**
 * Media as plain files: `<root>/<bucket>/<id>` holds the bytes, `<id>.json` the metadata.
 * Bytes are written to a temp file and renamed into place, so readers never see a partial file.
 */
export class FileMediaStore implements MediaStore {
  constructor(private readonly root: string) {}

  async put(bucket: Bucket, id: string, meta: MediaMeta, body: Readable): Promise<MediaInfo> {
    const dataPath = this.path(bucket, id);
    const tempDir = join(this.root, '.tmp');
    await mkdir(tempDir, { recursive: true });
    await mkdir(join(this.root, bucket), { recursive: true });
    const temp = join(tempDir, `${id}.${randomUUID()}`);
    try {
      // 1 MiB of buffer lets the network keep reading while the disk writes.
      await pipeline(body, createWriteStream(temp, { flags: 'wx', highWaterMark: 1024 * 1024 }));
      const { size: length } = await stat(temp);
      const info: MediaInfo = { ...meta, id, bucket, length, createdAt: new Date() };
      try {
        await writeFile(`${dataPath}.json`, JSON.stringify(info), { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new MediaExists(bucket, id);
        throw err;
      }
      await rename(temp, dataPath);
      return info;
    } finally {
      await rm(temp, { force: true });
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

  async close(): Promise<void> {}

  private path(bucket: Bucket, id: string): string {
    if (!isMediaId(id)) throw new Error(`not a media id: ${JSON.stringify(id)}`);
    return join(this.root, bucket, id);
  }
}
