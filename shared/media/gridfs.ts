import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GridFSBucket, type Db, type GridFSFile } from 'mongodb';
import { MediaExists, isMediaId, type Bucket, type ByteRange, type MediaInfo, type MediaMeta, type MediaStore } from './store';

interface Metadata extends MediaMeta {}

/**
 * Media in MongoDB GridFS, one bucket per kind (`videos`, `mp3s`), with owner, name, content
 * type and source video in each file's metadata. Bodies stream through in chunks; a failed
 * upload's chunks are removed.
 */
export class GridFSMediaStore implements MediaStore {
  private readonly buckets = new Map<Bucket, GridFSBucket>();
  private indexes?: Promise<void>;

  /** `connect` is called on each use, so a process starts even while MongoDB is down. */
  constructor(private readonly connect: () => Promise<Db>) {}

  async put(bucket: Bucket, id: string, meta: MediaMeta, body: Readable): Promise<MediaInfo> {
    await this.ensureIndexes();
    const db = await this.connect();
    const gridfs = this.bucket(db, bucket);
    if (await this.find(bucket, id)) throw new MediaExists(bucket, id);
    // Chunks without a files document are what a crashed upload left: nothing refers to them.
    await db.collection(`${bucket}.chunks`).deleteMany({ files_id: id as never });
    const metadata: Metadata = { owner: meta.owner, filename: meta.filename, contentType: meta.contentType, ...(meta.sourceVideoId && { sourceVideoId: meta.sourceVideoId }) };
    const upload = gridfs.openUploadStreamWithId(id as never, meta.filename, { metadata });
    try {
      await pipeline(body, upload);
    } catch (err) {
      await upload.abort().catch(() => undefined);
      if ((err as { code?: number }).code === 11000) throw new MediaExists(bucket, id);
      throw err;
    }
    const stored = await this.find(bucket, id);
    if (!stored) throw new Error(`${bucket}/${id} vanished after upload`);
    return toInfo(bucket, stored);
  }

  async stat(bucket: Bucket, id: string): Promise<MediaInfo | null> {
    if (!isMediaId(id)) return null;
    const file = await this.find(bucket, id);
    return file ? toInfo(bucket, file) : null;
  }

  /**
   * One cursor over the file's chunks, fetched a few at a time. (The driver's download stream
   * leaves batching to the server; FerretDB then answers with all remaining chunks at once, so
   * memory grew with the file. Batches of 8 chunks, 2 MiB, keep it flat on every server.)
   */
  async read(bucket: Bucket, id: string, range?: ByteRange): Promise<Readable> {
    const db = await this.connect();
    const file = await this.find(bucket, id);
    if (!file) throw new Error(`${bucket}/${id} is not stored`);
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? file.length - 1, file.length - 1);
    const size = file.chunkSize;
    const first = Math.floor(start / size);
    const last = Math.floor(end / size);
    const cursor = db
      .collection<{ files_id: string; n: number; data: { buffer: Uint8Array } }>(`${bucket}.chunks`)
      .find({ files_id: id, n: { $gte: first, $lte: last } })
      .sort({ n: 1 })
      .batchSize(8);
    async function* bytes() {
      if (end < start) return;
      let expected = first;
      try {
        for await (const chunk of cursor) {
          if (chunk.n !== expected) throw new Error(`${bucket}/${id}: chunk ${expected} is missing`);
          const offset = chunk.n * size;
          yield Buffer.from(chunk.data.buffer).subarray(Math.max(start - offset, 0), Math.min(end - offset + 1, size));
          expected++;
        }
      } finally {
        await cursor.close();
      }
      if (expected !== last + 1) throw new Error(`${bucket}/${id}: chunk ${expected} is missing`);
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  async delete(bucket: Bucket, id: string): Promise<void> {
    const db = await this.connect();
    await db.collection(`${bucket}.files`).deleteOne({ _id: id as never });
    await db.collection(`${bucket}.chunks`).deleteMany({ files_id: id as never });
  }

  async list(bucket: Bucket, { before, after, limit }: { before: Date; after?: string; limit: number }): Promise<MediaInfo[]> {
    const files = (await this.connect()).collection<GridFSFile>(`${bucket}.files`);
    const filter = { uploadDate: { $lt: before }, ...(after !== undefined && { _id: { $gt: after as never } }) };
    return (await files.find(filter, { sort: { _id: 1 }, limit }).toArray()).map((file) => toInfo(bucket, file));
  }

  async storedBytes(owner: string): Promise<number> {
    await this.ensureIndexes();
    const db = await this.connect();
    let total = 0;
    for (const bucket of ['videos', 'mp3s'] as const) {
      const [sum] = await db
        .collection(`${bucket}.files`)
        .aggregate<{ bytes: number }>([{ $match: { 'metadata.owner': owner } }, { $group: { _id: null, bytes: { $sum: '$length' } } }])
        .toArray();
      total += sum?.bytes ?? 0;
    }
    return total;
  }

  /** The client is the process's (see shared/mongo.ts); whoever opened it closes it. */
  async close(): Promise<void> {}

  private bucket(db: Db, name: Bucket): GridFSBucket {
    let bucket = this.buckets.get(name);
    if (!bucket) {
      bucket = new GridFSBucket(db, { bucketName: name, chunkSizeBytes: 255 * 1024 });
      this.buckets.set(name, bucket);
    }
    return bucket;
  }

  private async find(bucket: Bucket, id: string): Promise<GridFSFile | null> {
    return (await this.connect()).collection<GridFSFile>(`${bucket}.files`).findOne({ _id: id as never });
  }

  /** GridFS's own indexes, and one MP3 per source video; created once per process. */
  private ensureIndexes(): Promise<void> {
    this.indexes ??= (async () => {
      const db = await this.connect();
      for (const bucket of ['videos', 'mp3s'] as const) {
        await db.collection(`${bucket}.files`).createIndex({ filename: 1, uploadDate: 1 });
        await db.collection(`${bucket}.chunks`).createIndex({ files_id: 1, n: 1 }, { unique: true });
        await db.collection(`${bucket}.files`).createIndex({ 'metadata.owner': 1 });
      }
      await db.collection('mp3s.files').createIndex({ 'metadata.sourceVideoId': 1 }, { unique: true, name: 'one_mp3_per_video' });
    })();
    this.indexes.catch(() => (this.indexes = undefined));
    return this.indexes;
  }
}

function toInfo(bucket: Bucket, file: GridFSFile): MediaInfo {
  const meta = (file.metadata ?? {}) as Partial<Metadata>;
  return {
    id: String(file._id),
    bucket,
    owner: meta.owner ?? '',
    filename: meta.filename ?? file.filename,
    contentType: meta.contentType ?? 'application/octet-stream',
    length: file.length,
    createdAt: file.uploadDate,
    ...(meta.sourceVideoId && { sourceVideoId: meta.sourceVideoId }),
  };
}
