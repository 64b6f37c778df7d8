/**
 * The embedded broker: an HTTP ingress that keeps every event in the queue, and a dispatcher
 * that delivers them to the Triggers' subscribers the way Knative's RabbitMQ broker does:
 * a 200 carrying a CloudEvent is a reply, published in turn; 404, 408, 409, 429 and 5xx (and
 * no answer) are retried per the Trigger's delivery spec and then dead-lettered with
 * Knative's error extensions; any other 4xx is dropped.
 */
import { Agent, request, type IncomingHttpHeaders, type RequestListener } from 'node:http';
import { HTTP } from 'cloudevents';
import type { Logger } from '../shared/log';
import { Problem, problemJson } from '../shared/problem';
import type { BrokerQueue, StoredEvent } from './queue';
import type { Delivery, TriggerSpec } from './topology';

/**
 * The most an event may weigh at the ingress. Ours carry ids, an address and a file name (under
 * 2 KiB); the ingress holds each body whole until it is queued, so without a bound one request
 * could make it hold anything (200 MB made the local runtime grow to 1 GB). 1 MiB leaves room
 * for any event a Trigger here routes, and is in line with real brokers (a Kafka-backed Knative
 * Broker, for one, stops at Kafka's default of about 1 MB per message).
 */
export const maxEventBytes = 1024 * 1024;

/**
 * The ingress, as a plain Node request listener (the broker's hot path: no Request objects).
 * 202 once the event is in the queue; 400 with problem+json for what is not a CloudEvent, 413
 * for a body over `maxBytes` (checked as it arrives, not only by its declared length).
 */
export function brokerIngress(queue: BrokerQueue, log: Logger, { maxBytes = maxEventBytes } = {}): RequestListener {
  return (req, res) => {
    const answerProblem = (status: number, title: string, detail: string, headers: Record<string, string> = {}) =>
      void res.writeHead(status, { ...headers, 'content-type': problemJson }).end(JSON.stringify(new Problem({ status, title, detail }).body()));
    const refuseTooLarge = () => {
      log.warn('ingress refused an event over the size limit', { maxBytes, declared: req.headers['content-length'] });
      // Closing the connection is what stops the rest of the body from being read.
      answerProblem(413, 'Content Too Large', `An event may have at most ${maxBytes} bytes.`, { connection: 'close' });
    };
    if (Number(req.headers['content-length']) > maxBytes) return refuseTooLarge();

    const chunks: Buffer[] = [];
    let size = 0;
    req.on('error', () => undefined); // the client went away: there is no one to answer
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else if (!res.headersSent) {
        chunks.length = 0;
        refuseTooLarge();
      }
    });
    req.on('end', async () => {
      if (res.headersSent) return;
      if (req.method === 'GET' && req.url === '/healthz') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
      let event: StoredEvent;
      try {
        if (req.method !== 'POST') throw new Error(`${req.method} is not POST`);
        event = toStored(headers, Buffer.concat(chunks));
      } catch (err) {
        log.warn('ingress rejected a request that is not a CloudEvent', { detail: (err as Error).message });
        return answerProblem(400, 'Bad Request', `Not a CloudEvent: ${(err as Error).message}`);
      }
      try {
        const routed = await queue.publish(event);
        log.info('event accepted', { eventId: event.headers['ce-id'], type: event.headers['ce-type'], triggers: routed });
        res.writeHead(202).end();
      } catch (err) {
        log.error('event not stored', { eventId: event.headers['ce-id'], err });
        answerProblem(500, 'Internal Server Error', 'The event was not stored; send it again.');
      }
    });
  };
}

const required = ['ce-id', 'ce-source', 'ce-type'];

/** Checks the request is a CloudEvent and keeps it in binary mode. */
export function toStored(headers: Record<string, string>, body: Buffer): StoredEvent {
  if (headers['ce-specversion']) {
    // Binary mode, the common case: the attributes are the headers; check them without parsing the data.
    if (headers['ce-specversion'] !== '1.0') throw new Error(`specversion ${headers['ce-specversion']} is not 1.0`);
    const missing = required.filter((name) => !headers[name]);
    if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}`);
    const kept = Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('ce-') || name === 'content-type'));
    return { headers: kept, body: body.toString('base64') };
  }
  const parsed = HTTP.toEvent({ headers, body: body.toString('utf8') });
  if (Array.isArray(parsed)) throw new Error('batches are not accepted');
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
  /** How long a Service may take to answer (its timeoutSeconds); a Trigger's delivery.timeout wins. */
  timeoutMs?: (service: string) => number;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
}

const retriable = (status: number) => status === 404 || status === 408 || status === 409 || status === 429 || status >= 500;

/** Knative's (and the CloudEvents SDK's) schedule: the k-th retry waits delay·k (linear) or delay·2^k. */
export const backoffMs = (delivery: Delivery, retry: number) =>
  delivery.backoffPolicy === 'linear' ? delivery.backoffDelayMs * retry : delivery.backoffDelayMs * 2 ** retry;

type Outcome = { status: number; body: Buffer; reply?: StoredEvent } | { status: 0; error: Error };

export function startDispatch({ queue, triggers, resolve, log, timeoutMs = () => 300_000, sleep = (ms) => new Promise((r) => setTimeout(r, ms)) }: DispatchOptions): void {
  for (const trigger of triggers) {
    queue.consume(trigger, async ({ event }) => {
      const url = resolve(trigger.subscriber);
      const { delivery } = trigger;
      const eventId = event.headers['ce-id'];
      for (let attempt = 0; ; attempt++) {
        const outcome = await send(url, event, delivery.timeoutMs ?? timeoutMs(trigger.subscriber));
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
    // As eventing-rabbitmq v0.48's dispatcher does: -1 when the subscriber never answered, and no
    // knativeerrordata (it adds that only when forwarding a reply fails).
    const headers: Record<string, string> = { ...event.headers, 'ce-knativeerrordest': dest, 'ce-knativeerrorcode': String(outcome.status || -1) };
    const result = await send(resolve(sink), { headers, body: event.body }, timeoutMs(sink));
    if (result.status < 200 || result.status >= 300) {
      // Thrown, the message stays queued and the whole delivery is tried again later.
      throw new Error(`dead-letter sink answered ${result.status}`);
    }
    log.error('dead-lettered', { trigger: trigger.name, eventId, status: outcome.status, sink });
  }
}

/** Kept-alive connections to the subscribers, as a dispatcher keeps them. */
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

async function send(url: string, event: StoredEvent, timeoutMs: number): Promise<Outcome> {
  const payload = Buffer.from(event.body, 'base64');
  let timer: NodeJS.Timeout | undefined;
  try {
    const { status, headers, body } = await new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { ...event.headers, 'content-length': String(payload.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      // A stopped subscriber must not hold the delivery for ever: the attempt fails and is retried.
      timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', reject);
      req.end(payload);
    });
    const flat = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
    const ok = status >= 200 && status < 300;
    const isEvent = !!flat['ce-specversion'] || flat['content-type']?.startsWith('application/cloudevents+json');
    return { status, body, ...(ok && isEvent && { reply: toStored(flat, body) }) };
  } catch (err) {
    return { status: 0, error: err as Error };
  } finally {
    clearTimeout(timer);
  }
}
