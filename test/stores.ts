import { createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Bucket, MediaStore } from '../shared/media/store';
import { openStores, type Stores } from '../shared/stores';

/** The embedded stores in a fresh folder (closed with the test process). */
export async function fileStores(dir: string): Promise<Stores> {
  return openStores(pathToFileURL(join(dir, 'store')));
}

/** Every file the media store holds, temp files included: what "nothing left stored" checks. */
export async function storedFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'store', 'media'), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Copies a stored item to a file, for ffmpeg to look at. */
export async function saveMedia(media: MediaStore, bucket: Bucket, id: string, path: string): Promise<string> {
  await pipeline(await media.read(bucket, id), createWriteStream(path));
  return path;
}
