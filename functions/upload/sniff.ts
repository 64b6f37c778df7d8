import type { Readable } from 'node:stream';
import { fileTypeStream } from 'file-type';

/** Containers that carry audio, named by their sniffed type rather than by the client's claim. */
const mediaTypes = /^(video|audio)\/|^application\/(ogg|mp4|vnd\.ms-asf|vnd\.rn-realmedia)$/;

export interface Sniffed {
  /** The media type read from the bytes, or undefined if they are not a media container. */
  mediaType: string | undefined;
  /** The same bytes, from the start. */
  stream: Readable;
}

export async function sniffMedia(stream: Readable): Promise<Sniffed> {
  const typed = await fileTypeStream(stream, { sampleSize: 4100 });
  const mime = typed.fileType?.mime;
  return { mediaType: mime && mediaTypes.test(mime) ? mime : undefined, stream: typed };
}
