/** Large request bodies made on the fly, for the memory test and the streaming benchmark. */
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

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

/**
 * Streams `file` as the one part of a multipart upload to the upload function. Plain
 * `http.request`, piped: a fetch with a web-stream body costs the client more than the
 * function spends, and would be what a benchmark measured.
 */
export function uploadStream(uploadUrl: string, token: string, file: Readable, filename = 'big.mp4'): Promise<{ status: number; json(): Promise<unknown>; text(): Promise<string> }> {
  const boundary = 'earshot-stream-boundary';
  const body = Readable.from(
    (async function* () {
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n\r\n`);
      yield* file;
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    })(),
  );
  return new Promise((resolve, reject) => {
    const req = request(`${uploadUrl}/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    req.on('response', async (res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ status: res.statusCode ?? 0, text: async () => text, json: async () => JSON.parse(text) });
    });
    req.on('error', reject);
    pipeline(body, req).catch(reject);
  });
}
