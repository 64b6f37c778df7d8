import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import pRetry, { AbortError } from 'p-retry';
import { toHttp, type EarshotEvent } from './events';

export type Send = (headers: Record<string, string>, body: string | Uint8Array<ArrayBuffer>) => Promise<void>;
export type Emit = (event: EarshotEvent) => Promise<void>;

/**
 * Posts deliveries to the broker's ingress (`K_SINK`). A few quick retries ride out a broker
 * restart; a 4xx means the broker refuses the event, so it is not retried.
 */
export function brokerSender(sink: URL, { retries = 3, timeoutMs = 5000 } = {}): Send {
  return async (headers, body) => {
    await pRetry(
      async () => {
        const status = await post(sink, headers, body, timeoutMs);
        if (status >= 200 && status < 300) return;
        const error = new Error(`the broker answered ${status}`);
        throw status >= 500 || status === 429 ? error : new AbortError(error);
      },
      { retries, minTimeout: 100, maxTimeout: 1000 },
    );
  };
}

/**
 * One POST, answered with its status; the answer's body is read and dropped. node:http, not
 * fetch: the first fetch in a process compiles undici's WebAssembly HTTP parser, about 26 MB
 * more RSS for a moment after upload's first event (make bench, B3 on GridFS: upload's peak RSS
 * 160–166 MB with fetch, 136–138 MB with this).
 */
function post(url: URL, headers: Record<string, string>, body: string | Uint8Array, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(bytes.byteLength) },
    });
    const timer = setTimeout(() => req.destroy(new Error(`the broker did not answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('response', (res) => {
      clearTimeout(timer);
      res.on('error', () => undefined).resume(); // the connection goes back to the agent
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(bytes);
  });
}

/** Sends earshot's events in binary content mode. */
export function brokerEmitter(sink: URL, options?: { retries?: number; timeoutMs?: number }): Emit {
  const send = brokerSender(sink, options);
  return (event) => {
    const { headers, body } = toHttp(event);
    return send(headers, body);
  };
}
