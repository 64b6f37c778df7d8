import type { Readable } from 'node:stream';

/** GridFS bucket names; the file adapter uses them as folder names. */
export type Bucket = 'videos' | 'mp3s';

export interface MediaMeta {
  owner: string;
  filename: string;
  contentType: string;
  /** For an MP3: the video it was made from. */
  sourceVideoId?: string;
}

export interface MediaInfo extends MediaMeta {
  id: string;
  bucket: Bucket;
  length: number;
  createdAt: Date;
}

/** Inclusive byte range, as in HTTP `Range`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface MediaStore {
  /**
   * Streams `body` into the store under `id`. If `body` errors, nothing is left stored and
   * its error is rethrown. An id that is already stored throws `MediaExists`.
   */
  put(bucket: Bucket, id: string, meta: MediaMeta, body: Readable): Promise<MediaInfo>;
  stat(bucket: Bucket, id: string): Promise<MediaInfo | null>;
  /** The bytes of a stored item (or of a range of it); call `stat` first. */
  read(bucket: Bucket, id: string, range?: ByteRange): Promise<Readable>;
  delete(bucket: Bucket, id: string): Promise<void>;
  /**
   * Up to `limit` items of a bucket stored before `before`, by id, after the id `after` when
   * given: a page of what the sweeper checks for an owner job.
   */
  list(bucket: Bucket, page: { before: Date; after?: string; limit: number }): Promise<MediaInfo[]>;
  /** The bytes stored for `owner`, videos and MP3s together: what the per-user quota counts. */
  storedBytes(owner: string): Promise<number>;
  close(): Promise<void>;
}

export class MediaExists extends Error {
  constructor(bucket: Bucket, id: string) {
    super(`${bucket}/${id} is already stored`);
    this.name = 'MediaExists';
  }
}

/** Ids are URL- and path-safe; anything else is not an id we issued. */
export const isMediaId = (id: string): boolean => /^[A-Za-z0-9_-]{1,64}$/.test(id);
