import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from './log';
import { Problem, problemJson } from './problem';

/** Node's own mapping of parser and timeout errors to statuses (node:_http_server socketOnError). */
const statusFor: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/**
 * A `clientError` listener for node:http servers: what Node answers by itself (400 for a bad
 * request line, 431 for headers too large, 408 when the request took too long), but as
 * problem+json like every other answer, and logged. Node's own caution is kept: nothing is
 * written on a socket that is gone or whose response has already begun.
 */
export function answerClientError(log: Logger) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const status = statusFor[err.code ?? ''] ?? 400;
    const title = STATUS_CODES[status]!;
    log.warn('client error', { status, code: err.code, detail: err.message });
    const body = JSON.stringify(new Problem({ status, title, detail: clientDetail(status) }).body());
    const head = [
      `HTTP/1.1 ${status} ${title}`,
      `content-type: ${problemJson}`,
      `content-length: ${Buffer.byteLength(body)}`,
      'x-content-type-options: nosniff',
      'connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
  };
}

function clientDetail(status: number): string {
  if (status === 431) return 'The request headers are too large.';
  if (status === 413) return 'The chunk extensions are too large.';
  if (status === 408) return 'The request took too long to arrive.';
  return 'The request is not valid HTTP/1.1.';
}
