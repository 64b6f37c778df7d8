import pRetry, { AbortError } from 'p-retry';
import { toHttp, type EarshotEvent } from '../../shared/events';

export type Emit = (event: EarshotEvent) => Promise<void>;

/**
 * Sends events to the broker's ingress (`K_SINK`) in binary mode. A few quick retries ride
 * out a broker restart; a 4xx means the broker refuses the event, so it is not retried.
 */
export function brokerEmitter(sink: URL, { retries = 3, timeoutMs = 5000 } = {}): Emit {
  return async (event) => {
    const { headers, body } = toHttp(event);
    await pRetry(
      async () => {
        const res = await fetch(sink, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
        await res.body?.cancel();
        if (res.ok) return;
        const error = new Error(`the broker answered ${res.status} to ${event.type}`);
        throw res.status >= 500 || res.status === 429 ? error : new AbortError(error);
      },
      { retries, minTimeout: 100, maxTimeout: 1000 },
    );
  };
}
