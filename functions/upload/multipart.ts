import { Readable, PassThrough } from 'node:stream';
import busboy from 'busboy';
import { Problem, badRequest } from '../../shared/problem';

export interface IncomingFile {
  filename: string;
  mimeType: string;
  stream: Readable;
}

export interface MultipartLimits {
  maxFileBytes: number;
}

/** Room for part headers and small text fields around the file. */
const envelopeBytes = 64 * 1024;

export const tooLarge = (maxFileBytes: number) =>
  new Problem({ status: 413, title: 'Content Too Large', detail: `The file is larger than the limit of ${maxFileBytes} bytes.` });

/**
 * Streams the one file part of a `multipart/form-data` request into `store`, never holding it
 * whole. Zero files, several files or a malformed body → 400, over the limit → 413; whatever
 * `store` kept is handed to `discard` when the request fails after it.
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
      limits: { fileSize: limits.maxFileBytes, files: 1, fields: 20, fieldSize: 64 * 1024, parts: 21, headerPairs: 20 },
    });
  } catch (err) {
    throw badRequest(`The multipart body cannot be read: ${(err as Error).message}.`);
  }

  let stored: Promise<T> | undefined;
  let failure: Problem | undefined;
  const fail = (problem: Problem) => (failure ??= problem);

  parser.on('file', (_field, file, info) => {
    // Our own stream in front of busboy's, so that going over the limit fails the store.
    const body = new PassThrough();
    file.on('limit', () => {
      fail(tooLarge(limits.maxFileBytes));
      body.destroy(failure);
      file.resume();
    });
    file.on('error', (err: Error) => body.destroy(err)); // a truncated body errors the part too
    file.pipe(body);
    stored = store({ filename: info.filename ?? 'upload', mimeType: info.mimeType, stream: body });
    stored.catch(() => file.resume()); // keep parsing so the request can be answered
  });
  parser.on('filesLimit', () => fail(badRequest('Send exactly one file; this request has several.')));
  parser.on('partsLimit', () => fail(badRequest('Too many form parts.')));
  parser.on('fieldsLimit', () => fail(badRequest('Too many form fields.')));

  const finished = new Promise<void>((resolve, reject) => {
    parser.once('close', resolve);
    parser.once('error', (err: Error) => reject(badRequest(`The multipart body cannot be read: ${err.message}.`)));
  });
  const source = Readable.fromWeb(request.body as import('node:stream/web').ReadableStream, { highWaterMark: 1024 * 1024 });
  source.on('error', (err) => parser.destroy(err));
  source.pipe(parser);

  let result: T | undefined;
  try {
    await finished;
    if (!stored) throw badRequest('Send exactly one file; this request has none.');
    result = await stored;
  } catch (err) {
    source.destroy();
    if (stored) stored.then(discard, () => undefined);
    throw failure ?? err;
  }
  if (failure) {
    await discard(result);
    throw failure;
  }
  return result;
}
