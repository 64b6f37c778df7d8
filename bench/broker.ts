/**
 * B5: events per second a broker takes in at its ingress and delivers to a subscriber that answers
 * 202 at once: the embedded broker, and with `rabbitmq` eventing-rabbitmq's real ingress and
 * dispatchers beside it (runs interleaved), the same load on both.
 */
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerIngress, startDispatch } from '../local/broker';
import { fileQueue } from '../local/queue';
import { readTopology, type TriggerSpec } from '../local/topology';
import { createLogger } from '../shared/log';
import { interleaved, median, type Row } from './measure';
import { startRealBroker } from './rabbitmq';

interface Broker {
  url: string;
  stop(): Promise<void>;
}

/** A real broker that stops delivering would otherwise leave the run waiting for ever. */
const stallMs = 60_000;

/** The subscriber: answers 202 at once and counts the distinct events of the convert Trigger's type. */
async function standIn(type: string) {
  const seen = new Set<string>();
  let wanted = Infinity;
  let settle: (err?: Error) => void = () => {};
  const server: Server = createServer((req, res) => {
    req.resume().on('end', () => {
      res.writeHead(202).end();
      if (req.headers['ce-type'] === type) seen.add(String(req.headers['ce-id']));
      if (seen.size >= wanted) settle();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    /** Resolves once `count` new events have arrived; rejects when none has for a minute. */
    receive(count: number): Promise<void> {
      seen.clear();
      wanted = count;
      return new Promise<void>((resolve, reject) => {
        let last = 0;
        let lastAt = Date.now();
        const watch = setInterval(() => {
          if (seen.size !== last) [last, lastAt] = [seen.size, Date.now()];
          else if (Date.now() - lastAt > stallMs) finish(new Error(`${seen.size} of ${count} events delivered, then none for ${stallMs / 1000} s`));
        }, 1000);
        const finish = (err?: Error) => {
          clearInterval(watch);
          wanted = Infinity;
          settle = () => {};
          if (err) reject(err);
          else resolve();
        };
        settle = finish;
      });
    },
    /** Stops waiting (a sender failed). */
    cancel: () => settle(new Error('cancelled')),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

type StandIn = Awaited<ReturnType<typeof standIn>>;

/** The convert Trigger alone, as the manifests define it (its parallelism too), on a fresh file queue. */
async function startEmbeddedBroker(trigger: TriggerSpec, subscriber: string): Promise<Broker> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-broker-'));
  const log = createLogger({}, { level: 'silent' });
  const queue = await fileQueue(join(dir, 'queue'), [trigger]);
  startDispatch({ queue, triggers: [trigger], resolve: () => subscriber, log });
  const ingress = createServer(brokerIngress(queue, log));
  await new Promise<void>((resolve) => ingress.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(ingress.address() as AddressInfo).port}/`,
    stop: async () => {
      ingress.close();
      await queue.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `events` POSTed by 16 keep-alive senders, each waiting for its 202; the rate at which they reach the subscriber. */
async function eventsPerSecond(url: string, subscriber: StandIn, events: number, type: string, run: string): Promise<number> {
  const delivered = subscriber.receive(events);
  const started = performance.now();
  let next = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const post = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const body = `{"i":${i}}`;
      const headers = { 'ce-specversion': '1.0', 'ce-id': `bench-${run}-${i}`, 'ce-source': '/bench', 'ce-type': type, 'content-type': 'application/json', 'content-length': String(body.length) };
      const req = request(url, { method: 'POST', agent, headers }, (res) => {
        res.resume().on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`ingress answered ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  const sender = async () => {
    while (next < events) await post(next++);
  };
  try {
    await Promise.all([...Array.from({ length: 16 }, sender), delivered]);
  } catch (err) {
    subscriber.cancel();
    throw err;
  } finally {
    agent.destroy();
  }
  return events / ((performance.now() - started) / 1000);
}

export async function benchBroker({ events, runs, rabbitmq = false }: { events: number; runs: number; rabbitmq?: boolean }): Promise<Row[]> {
  const trigger = readTopology().triggers.find((t) => t.subscriber === 'convert')!;
  const type = trigger.filter.type!;
  const subscriber = await standIn(type);
  const real = rabbitmq ? await startRealBroker(subscriber.url) : undefined;
  try {
    let run = 0;
    const embedded = async () => {
      const broker = await startEmbeddedBroker(trigger, subscriber.url);
      try {
        return await eventsPerSecond(broker.url, subscriber, events, type, `embedded-${run++}`);
      } finally {
        await broker.stop();
      }
    };
    const measure = `${events} events in and delivered`;
    if (!real) {
      const rates: number[] = [];
      for (let r = 0; r < runs; r++) rates.push(await embedded());
      return [embeddedRow(measure, median(rates))];
    }
    // The real broker runs all along: one start, its queues drained between runs.
    const m = await interleaved(runs, embedded, () => eventsPerSecond(real.url, subscriber, events, type, `real-${run++}`));
    const ratio = m.subject / m.baseline;
    return [
      embeddedRow(measure, m.baseline),
      {
        id: 'B5',
        measure: `eventing-rabbitmq ingress + dispatcher (RabbitMQ), ${measure}`,
        value: m.subject,
        unit: 'events/s',
        baseline: { name: 'embedded broker', value: m.baseline },
        ratio,
        target: '—',
        met: null,
        note: `convert Trigger's parallelism ${trigger.parallelism}`,
      },
    ];
  } finally {
    await real?.stop();
    await subscriber.close();
  }
}

const embeddedRow = (measure: string, rate: number): Row => ({ id: 'B5', measure: `embedded broker, ${measure}`, value: rate, unit: 'events/s', target: '≥ 2,000/s', met: rate >= 2000 });
