/** Large request bodies made on the fly, for the memory test and the streaming benchmark. */
import { Readable } from 'node:stream';

const MiB = 1024 * 1024;

/** `size` bytes that sniff as the media `head` starts: the head, then filler, in 1 MiB chunks. */
export function mediaBytes(head: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      yield head;
      const filler = Buffer.alloc(MiB, 0x5a);
      for (let left = size - head.length; left > 0; left -= MiB) yield left >= MiB ? filler : filler.subarray(0, left);
    })(),
  );
}

/** Streams `file` as the one part of a multipart upload to the upload function; answers its response. */
export function uploadStream(uploadUrl: string, token: string, file: Readable, filename = 'big.mp4'): Promise<Response> {
  const boundary = 'earshot-stream-boundary';
  const body = Readable.from(
    (async function* () {
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n\r\n`);
      yield* file;
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    })(),
  );
  return fetch(`${uploadUrl}/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: Readable.toWeb(body) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
}
