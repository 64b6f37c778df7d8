import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../shared/log';
import { tempDir } from '../test/support';
import { backoffMs, brokerIngress, maxEventBytes, startDispatch } from './broker';
import { fileQueue, type BrokerQueue } from './queue';
import { readTopology, type TriggerSpec } from './topology';

interface Received {
  at: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Subscribers at /<name>; each answers from its script (one status per request, the last one repeating). */
async function subscribers(script: Record<string, (number | 'reply' | 'hang')[]>) {
  const received: Record<string, Received[]> = {};
  const server: Server = createServer(async (req, res) => {
    const name = req.url!.slice(1);
    let body = '';
    for await (const chunk of req) body += chunk;
    (received[name] ??= []).push({ at: performance.now(), headers: req.headers, body });
    const steps = script[name] ?? [202];
    const step = steps[Math.min(received[name].length - 1, steps.length - 1)]!;
    if (step === 'hang') return; // a stopped subscriber: never answers
    if (step === 'reply') {
      res.writeHead(200, { 'ce-specversion': '1.0', 'ce-id': `reply-${req.headers['ce-id']}`, 'ce-source': '/test', 'ce-type': 'com.test.replied', 'content-type': 'application/json' });
      return res.end('{"replied":true}');
    }
    res.writeHead(step, { 'content-type': 'text/plain' }).end(step >= 400 ? `failed with ${step}` : '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { received, resolve: (name: string) => `${base}/${name}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const event = (id: string, type: string) => ({
  headers: { 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/test', 'ce-type': type, 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify({ id })).toString('base64'),
});

const until = async (check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** Manifests the way an operator writes them: a Broker and Triggers in YAML. */
function writeTopology(dir: string) {
  mkdirSync(join(dir, 'knative'), { recursive: true });
  mkdirSync(join(dir, 'eventing'), { recursive: true });
  const trigger = (name: string, type: string, subscriber: string, delivery: string) => `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: ${name} }
spec:
  broker: test
  filter: { attributes: { type: ${type} } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: ${subscriber} } }
${delivery}
---
`;
  const dls = '    deadLetterSink: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: dls } }';
  writeFileSync(
    join(dir, 'eventing', 'broker.yaml'),
    `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: { name: test }
spec:
  delivery: { retry: 1, backoffPolicy: linear, backoffDelay: PT0.01S }
`,
  );
  writeFileSync(
    join(dir, 'eventing', 'triggers.yaml'),
    trigger('flaky-exp', 'com.test.flaky', 'flaky', `  delivery:\n    retry: 3\n    backoffPolicy: exponential\n    backoffDelay: PT0.05S\n${dls}`) +
      trigger('broken-linear', 'com.test.broken', 'broken', `  delivery:\n    retry: 2\n    backoffPolicy: linear\n    backoffDelay: PT0.02S\n${dls}`) +
      trigger('refusing', 'com.test.refused', 'refusing', `  delivery:\n    retry: 3\n${dls}`) +
      trigger('stalled', 'com.test.stalled', 'stalled', `  delivery:\n    retry: 1\n    backoffPolicy: linear\n    backoffDelay: PT0.01S\n    timeout: PT0.2S\n${dls}`) +
      trigger('replying', 'com.test.ask', 'replying', '') +
      trigger('reply-sink', 'com.test.replied', 'replysink', ''),
  );
}

describe('embedded broker', () => {
  let queue: BrokerQueue;
  let triggers: TriggerSpec[];
  let subs: Awaited<ReturnType<typeof subscribers>>;
  const sleeps: number[] = [];
  const log = memoryLogger();

  beforeAll(async () => {
    const dir = await tempDir();
    writeTopology(dir);
    triggers = readTopology(dir).triggers;
    subs = await subscribers({ flaky: [503, 500, 202], broken: [500], refusing: [400], replying: ['reply'], stalled: ['hang'] });
    queue = await fileQueue(join(dir, 'queue'), triggers);
    startDispatch({
      queue,
      triggers,
      resolve: subs.resolve,
      log,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((r) => setTimeout(r, ms));
      },
    });
  });
  afterAll(() => subs.close());

  it('reads each Trigger\'s delivery spec from the manifests, falling back to the broker\'s', () => {
    const byName = Object.fromEntries(triggers.map((t) => [t.name, t.delivery]));
    expect(byName['flaky-exp']).toEqual({ retry: 3, backoffPolicy: 'exponential', backoffDelayMs: 50, deadLetterSink: 'dls' });
    expect(byName['broken-linear']).toEqual({ retry: 2, backoffPolicy: 'linear', backoffDelayMs: 20, deadLetterSink: 'dls' });
    expect(byName['replying']).toEqual({ retry: 1, backoffPolicy: 'linear', backoffDelayMs: 10, deadLetterSink: undefined });
  });

  it('retries a failing subscriber with the Trigger\'s exponential backoff until it succeeds', async () => {
    sleeps.length = 0;
    await queue.publish(event('e-flaky', 'com.test.flaky'));
    await until(() => subs.received.flaky?.length === 3);
    expect(sleeps).toEqual([100, 200]); // 50 ms · 2^1, 50 ms · 2^2
    const [a, b, c] = subs.received.flaky!.map((r) => r.at);
    expect(b! - a!).toBeGreaterThanOrEqual(95);
    expect(c! - b!).toBeGreaterThanOrEqual(195);
    await new Promise((r) => setTimeout(r, 100));
    expect(subs.received.dls ?? []).toEqual([]);
  });

  it('gives up an attempt at the Trigger\'s delivery.timeout, retries, then dead-letters: a stopped subscriber holds nothing for ever', async () => {
    expect(triggers.find((t) => t.name === 'stalled')!.delivery.timeoutMs).toBe(200);
    await queue.publish(event('e-stalled', 'com.test.stalled'));
    await until(() => log.lines.some((l) => l.msg === 'dead-lettered' && l.eventId === 'e-stalled'));
    expect(subs.received.stalled).toHaveLength(2);
    expect(log.lines.find((l) => l.msg === 'retrying' && l.eventId === 'e-stalled')).toMatchObject({ error: 'no answer within 200 ms' });
    // The real dispatcher's code for a subscriber that never answered.
    expect(subs.received.dls!.find((r) => r.headers['ce-id'] === 'e-stalled')!.headers['ce-knativeerrorcode']).toBe('-1');
  });

  it('after the last retry (linear backoff) hands the event to the dead-letter sink with Knative\'s error extensions', async () => {
    sleeps.length = 0;
    await queue.publish(event('e-broken', 'com.test.broken'));
    await until(() => log.lines.some((l) => l.msg === 'dead-lettered' && l.eventId === 'e-broken'));
    expect(subs.received.broken).toHaveLength(3); // the first try and 2 retries
    expect(sleeps).toEqual([20, 40]);
    const dead = subs.received.dls!.find((r) => r.headers['ce-id'] === 'e-broken')!;
    expect(dead.headers).toMatchObject({
      'ce-type': 'com.test.broken',
      'ce-knativeerrordest': subs.resolve('broken'),
      'ce-knativeerrorcode': '500',
    });
    expect(dead.headers['ce-knativeerrordata']).toBeUndefined(); // as the real dispatcher: only for a failed reply
    expect(JSON.parse(dead.body)).toEqual({ id: 'e-broken' });
  });

  it('drops an event the subscriber refuses with a 400, without retrying', async () => {
    await queue.publish(event('e-refused', 'com.test.refused'));
    await until(() => log.lines.some((l) => l.msg === 'dropped: the subscriber refused the event' && l.eventId === 'e-refused'));
    expect(subs.received.refusing).toHaveLength(1);
    expect((subs.received.dls ?? []).some((r) => r.headers['ce-id'] === 'e-refused')).toBe(false);
  });

  it('publishes a subscriber\'s reply event back into the broker', async () => {
    await queue.publish(event('e-ask', 'com.test.ask'));
    await until(() => (subs.received.replysink ?? []).length === 1);
    expect(subs.received.replysink![0]!.headers).toMatchObject({ 'ce-id': 'reply-e-ask', 'ce-type': 'com.test.replied' });
    expect(JSON.parse(subs.received.replysink![0]!.body)).toEqual({ replied: true });
  });

  it('accepts binary and structured CloudEvents at its ingress, and refuses anything else with 400', async () => {
    const server = createServer(brokerIngress(queue, log));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const ingress = { request: (path: string, init: RequestInit) => fetch(new URL(path, url), init) };
    const binary = await ingress.request('/', { method: 'POST', headers: event('e-in-1', 'com.test.ask').headers, body: '{"id":"e-in-1"}' });
    expect(binary.status).toBe(202);
    const structured = await ingress.request('/', {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({ specversion: '1.0', id: 'e-in-2', source: '/t', type: 'com.test.ask', datacontenttype: 'application/json', data: { id: 'e-in-2' } }),
    });
    expect(structured.status).toBe(202);
    await until(() => (subs.received.replying ?? []).some((r) => r.headers['ce-id'] === 'e-in-2'));
    const seen = subs.received.replying!.find((r) => r.headers['ce-id'] === 'e-in-2')!;
    expect(JSON.parse(seen.body)).toEqual({ id: 'e-in-2' });
    const junk = await ingress.request('/', { method: 'POST', body: 'hello' });
    expect(junk.status).toBe(400);
    expect(junk.headers.get('content-type')).toBe('application/problem+json');
    const noType = await ingress.request('/', { method: 'POST', headers: { 'ce-specversion': '1.0', 'ce-id': 'x', 'ce-source': '/x' }, body: '{}' });
    expect(noType.status).toBe(400);
    expect(((await noType.json()) as { detail: string }).detail).toMatch(/ce-type/);
    server.close();
  });

  it('refuses an event over the size limit with 413, by its declared length or as it arrives, and keeps accepting', async () => {
    const server = createServer(brokerIngress(queue, log));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const big = Buffer.alloc(maxEventBytes + 1, 0x61);
    const send = (body: Buffer | ReadableStream<Uint8Array>) =>
      fetch(url, { method: 'POST', headers: event('e-big', 'com.test.ask').headers, body, duplex: 'half' } as RequestInit);

    const declared = await send(big);
    expect(declared.status).toBe(413);
    expect(declared.headers.get('content-type')).toBe('application/problem+json');
    expect(await declared.json()).toMatchObject({ status: 413, title: 'Content Too Large' });

    // No Content-Length (chunked): counted as it arrives. Over by its very last byte, so the
    // client has sent everything by the time the answer closes the connection.
    const streamed = await send(new Blob([big]).stream());
    expect(streamed.status).toBe(413);

    const atTheLimit = await send(Buffer.concat([Buffer.from('"'), Buffer.alloc(maxEventBytes - 2, 0x61), Buffer.from('"')]));
    expect(atTheLimit.status).toBe(202);
    expect(log.lines.some((l) => l.msg === 'ingress refused an event over the size limit')).toBe(true);
    server.close();
  });

  it('computes Knative\'s backoff schedule', () => {
    expect([1, 2, 3].map((k) => backoffMs({ retry: 3, backoffPolicy: 'exponential', backoffDelayMs: 1000 }, k))).toEqual([2000, 4000, 8000]);
    expect([1, 2, 3].map((k) => backoffMs({ retry: 3, backoffPolicy: 'linear', backoffDelayMs: 1000 }, k))).toEqual([1000, 2000, 3000]);
  });
});
