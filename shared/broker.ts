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
        const res = await fetch(sink, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
        await res.body?.cancel();
        if (res.ok) return;
        const error = new Error(`the broker answered ${res.status}`);
        throw res.status >= 500 || res.status === 429 ? error : new AbortError(error);
      },
      { retries, minTimeout: 100, maxTimeout: 1000 },
    );
  };
}

/** Sends earshot's events in binary content mode. */
export function brokerEmitter(sink: URL, options?: { retries?: number; timeoutMs?: number }): Emit {
  const send = brokerSender(sink, options);
  return (event) => {
    const { headers, body } = toHttp(event);
    return send(headers, body);
  };
}
