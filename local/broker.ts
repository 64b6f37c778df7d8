/**
 * The embedded broker: an HTTP ingress that keeps every event in the queue, and a dispatcher
 * that delivers them to the Triggers' subscribers the way Knative's RabbitMQ broker does:
 * a 200 carrying a CloudEvent is a reply, published in turn; 404, 408, 409, 429 and 5xx (and
 * no answer) are retried per the Trigger's delivery spec and then dead-lettered with
 * Knative's error extensions; any other 4xx is dropped.
 */
import { HTTP } from 'cloudevents';
import { Hono } from 'hono';
import type { Logger } from '../shared/log';
import { Problem } from '../shared/problem';
import type { BrokerQueue, StoredEvent } from './queue';
import type { Delivery, TriggerSpec } from './topology';

export function brokerIngress(queue: BrokerQueue, log: Logger) {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.post('*', async (c) => {
    const headers = Object.fromEntries(c.req.raw.headers);
    const body = Buffer.from(await c.req.arrayBuffer());
    let event: StoredEvent;
    try {
      event = toStored(headers, body);
    } catch (err) {
      log.warn('ingress rejected a request that is not a CloudEvent', { detail: (err as Error).message });
      return new Problem({ status: 400, title: 'Bad Request', detail: `Not a CloudEvent: ${(err as Error).message}` }).toResponse();
    }
    const routed = await queue.publish(event);
    log.info('event accepted', { eventId: event.headers['ce-id'], type: event.headers['ce-type'], triggers: routed });
    return c.body(null, 202);
  });
  return app;
}

/** Checks the request is a CloudEvent and keeps it in binary mode. */
export function toStored(headers: Record<string, string>, body: Buffer): StoredEvent {
  const parsed = HTTP.toEvent({ headers, body: body.toString('utf8') });
  if (Array.isArray(parsed)) throw new Error('batches are not accepted');
  if (headers['ce-specversion']) {
    const kept = Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('ce-') || name === 'content-type'));
    return { headers: kept, body: body.toString('base64') };
  }
  const binary = HTTP.binary(parsed);
  const data = binary.body;
  return {
    headers: binary.headers as Record<string, string>,
    body: Buffer.isBuffer(data) ? data.toString('base64') : Buffer.from(String(data ?? '')).toString('base64'),
  };
}

export interface DispatchOptions {
  queue: BrokerQueue;
  triggers: TriggerSpec[];
  /** Where a Service is reached. */
  resolve: (service: string) => string;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
}

const retriable = (status: number) => status === 404 || status === 408 || status === 409 || status === 429 || status >= 500;

/** Knative's (and the CloudEvents SDK's) schedule: the k-th retry waits delay·k (linear) or delay·2^k. */
export const backoffMs = (delivery: Delivery, retry: number) =>
  delivery.backoffPolicy === 'linear' ? delivery.backoffDelayMs * retry : delivery.backoffDelayMs * 2 ** retry;

type Outcome = { status: number; body: Buffer; reply?: StoredEvent } | { status: 0; error: Error };

export function startDispatch({ queue, triggers, resolve, log, sleep = (ms) => new Promise((r) => setTimeout(r, ms)) }: DispatchOptions): void {
  for (const trigger of triggers) {
    queue.consume(trigger, async ({ event }) => {
      const url = resolve(trigger.subscriber);
      const { delivery } = trigger;
      const eventId = event.headers['ce-id'];
      for (let attempt = 0; ; attempt++) {
        const outcome = await send(url, event);
        if (outcome.status >= 200 && outcome.status < 300) {
          const reply = 'reply' in outcome ? outcome.reply : undefined;
          if (reply) await queue.publish(reply);
          log.info('delivered', { trigger: trigger.name, eventId, status: outcome.status, attempt, reply: reply?.headers['ce-type'] });
          return;
        }
        if (outcome.status !== 0 && !retriable(outcome.status)) {
          log.warn('dropped: the subscriber refused the event', { trigger: trigger.name, eventId, status: outcome.status });
          return;
        }
        if (attempt >= delivery.retry) {
          await deadLetter(trigger, event, url, outcome);
          return;
        }
        const delayMs = backoffMs(delivery, attempt + 1);
        log.warn('retrying', { trigger: trigger.name, eventId, status: outcome.status, attempt: attempt + 1, delayMs, ...('error' in outcome && { error: outcome.error.message }) });
        await sleep(delayMs);
      }
    });
  }

  async function deadLetter(trigger: TriggerSpec, event: StoredEvent, dest: string, outcome: Outcome) {
    const sink = trigger.delivery.deadLetterSink;
    const eventId = event.headers['ce-id'];
    if (!sink) {
      log.error('dropped after the last retry: no dead-letter sink', { trigger: trigger.name, eventId, status: outcome.status });
      return;
    }
    const headers: Record<string, string> = { ...event.headers, 'ce-knativeerrordest': dest, 'ce-knativeerrorcode': String(outcome.status) };
    if ('body' in outcome && outcome.body.length > 0) headers['ce-knativeerrordata'] = outcome.body.subarray(0, 1024).toString('base64');
    const result = await send(resolve(sink), { headers, body: event.body });
    if (result.status < 200 || result.status >= 300) {
      // Thrown, the message stays queued and the whole delivery is tried again later.
      throw new Error(`dead-letter sink answered ${result.status}`);
    }
    log.error('dead-lettered', { trigger: trigger.name, eventId, status: outcome.status, sink });
  }
}

async function send(url: string, event: StoredEvent): Promise<Outcome> {
  try {
    const res = await fetch(url, { method: 'POST', headers: event.headers, body: Buffer.from(event.body, 'base64') });
    const body = Buffer.from(await res.arrayBuffer());
    const headers = Object.fromEntries(res.headers);
    const isEvent = !!headers['ce-specversion'] || headers['content-type']?.startsWith('application/cloudevents+json');
    return { status: res.status, body, ...(res.ok && isEvent && { reply: toStored(headers, body) }) };
  } catch (err) {
    return { status: 0, error: err as Error };
  }
}
