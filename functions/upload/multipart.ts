import { Readable, PassThrough } from 'node:stream';
import busboy from 'busboy';
import { Problem, badRequest } from '../../shared/problem';

export interface IncomingFile {
  /** The client's file name exactly as sent (UTF-8, plain or RFC 5987 `filename*`), without a path. */
  filename: string;
  mimeType: string;
  stream: Readable;
  /** The text fields sent before the file part, by name. Fields after it are refused: the file is stored as it streams, so what it is stored with must come first. */
  fields: ReadonlyMap<string, string>;
}

export interface MultipartLimits {
  maxFileBytes: number;
}

/** Room for part headers and small text fields around the file. */
export const envelopeBytes = 64 * 1024;
/** How much of a refused body is read and dropped before the connection is closed instead. */
const drainBytes = 4 * 1024 * 1024;

export const tooLarge = (maxFileBytes: number) =>
  new Problem({ status: 413, title: 'Content Too Large', detail: `The file is larger than the limit of ${maxFileBytes} bytes.` });

const unreadable = (err: Error) => badRequest(`The multipart body cannot be read: ${err.message}.`);

/**
 * Streams the one file part of a `multipart/form-data` request into `store`, never holding it
 * whole. The text fields go into `fields` as they arrive: those sent before the file are there
 * when `store` starts, the rest by the time this returns. Zero files, several files, a field sent
 * twice, or a malformed body → 400, over the limit → 413; whatever
 * `store` kept is handed to `discard` (and awaited) before the request fails.
 *
 * No body ends the process: busboy can emit `error` more than once for one body (a malformed
 * part header, then the unexpected end of the form), so every stream here listens for errors
 * for its whole life, and the first one decides the answer.
 */
export async function receiveOneFile<T>(
  request: Request,
  limits: MultipartLimits,
  store: (file: IncomingFile) => Promise<T>,
  discard: (stored: T) => Promise<void>,
): Promise<T> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^multipart\/form-data\s*;/i.test(contentType)) {
    throw new Problem({
      status: 415,
      title: 'Unsupported Media Type',
      detail: 'Send the video as multipart/form-data with one file part (curl -F file=@video.mp4).',
    });
  }
  const declared = Number(request.headers.get('content-length'));
  if (declared > limits.maxFileBytes + envelopeBytes) throw tooLarge(limits.maxFileBytes);
  if (!request.body) throw badRequest('The request has no body.');

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      // Part headers are bytes; without this busboy reads a UTF-8 file name as latin1 (vidÃ©o.mp4).
      defParamCharset: 'utf8',
      // busboy calls a file that reaches fileSize over it; one byte more lets a file of exactly the limit through.
      limits: { fileSize: limits.maxFileBytes + 1, files: 1, fields: 20, fieldSize: 64 * 1024, parts: 21, headerPairs: 20 },
    });
  } catch (err) {
    throw unreadable(err as Error);
  }

  let stored: Promise<T> | undefined;
  let failure: Problem | undefined;
  const fail = (problem: Problem) => (failure ??= problem);

  const source = Readable.fromWeb(request.body as import('node:stream/web').ReadableStream, { highWaterMark: 1024 * 1024 });
  /**
   * Parses no more of the body. The rest is read and dropped, up to a bound, so that the client
   * (which may still be sending) gets the answer: closing the socket under unread data resets
   * the connection, and the client sees "socket hang up" instead of the 400.
   */
  const stopReading = () => {
    source.unpipe(parser);
    parser.destroy(); // also fails the part being stored, so the store lets go of it
    let dropped = 0;
    source.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > drainBytes) source.destroy();
    });
    source.resume();
  };

  const fields = new Map<string, string>();
  parser.on('field', (name, value) => {
    if (fields.has(name)) fail(badRequest(`The field "${name}" is sent twice.`));
    else fields.set(name, value);
  });

  parser.on('file', (_field, file, info) => {
    // Our own stream in front of busboy's, so that going over the limit fails the store.
    const body = new PassThrough();
    // The store sees this stream's errors through its own pipeline; this listener only keeps a
    // store that already gave up on it (a 415) from turning a late error into a crash.
    body.on('error', () => undefined);
    file.on('limit', () => {
      fail(tooLarge(limits.maxFileBytes));
      body.destroy(failure);
      file.resume();
    });
    file.on('error', (err: Error) => body.destroy(err)); // a truncated body errors the part too
    file.pipe(body);
    stored = store({ filename: info.filename || 'upload', mimeType: info.mimeType, stream: body, fields });
    stored.catch(() => file.resume()); // keep parsing so the request can be answered
  });
  parser.on('filesLimit', () => fail(badRequest('Send exactly one file; this request has several.')));
  parser.on('partsLimit', () => fail(badRequest('Too many form parts.')));
  parser.on('fieldsLimit', () => fail(badRequest('Too many form fields.')));

  const finished = new Promise<void>((resolve, reject) => {
    parser.once('close', resolve);
    parser.on('error', (err: Error) => {
      reject(unreadable(err));
      stopReading();
    });
  });
  // The client went away or sent a broken chunked body: the parser fails with it, once.
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);

  let result: T;
  try {
    await finished;
    if (!stored) throw badRequest('Send exactly one file; this request has none.');
    result = await stored;
  } catch (err) {
    stopReading();
    // Awaited: when the answer goes out, nothing of this request is left in the store.
    if (stored) await stored.then(discard, () => undefined);
    throw failure ?? err;
  }
  if (failure) {
    await discard(result);
    throw failure;
  }
  return result;
}
