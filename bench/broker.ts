/** B5: events per second the embedded broker takes in at its ingress and delivers to a subscriber that answers 202 at once. */
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerIngress, startDispatch } from '../local/broker';
import { fileQueue } from '../local/queue';
import { readTopology } from '../local/topology';
import { createLogger } from '../shared/log';
import { median, type Row } from './measure';

export async function benchBroker({ events, runs }: { events: number; runs: number }): Promise<Row> {
  // The convert trigger, as the manifests define it (its parallelism too), pointed at a stand-in subscriber.
  const trigger = readTopology().triggers.find((t) => t.subscriber === 'convert')!;
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-broker-'));
    let received = 0;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const subscriber: Server = createServer((req, res) => {
      req.resume().on('end', () => {
        res.writeHead(202).end();
        if (++received === events) done();
      });
    });
    await new Promise<void>((resolve) => subscriber.listen(0, '127.0.0.1', resolve));
    const log = createLogger({}, { level: 'silent' });
    const queue = await fileQueue(join(dir, 'queue'), [trigger]);
    startDispatch({ queue, triggers: [trigger], resolve: () => `http://127.0.0.1:${(subscriber.address() as AddressInfo).port}/`, log });
    const ingress = createServer(brokerIngress(queue, log));
    await new Promise<void>((resolve) => ingress.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(ingress.address() as AddressInfo).port}/`;

    const started = performance.now();
    let next = 0;
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const post = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const body = `{"i":${i}}`;
        const headers = { 'ce-specversion': '1.0', 'ce-id': `bench-${i}`, 'ce-source': '/bench', 'ce-type': trigger.filter.type!, 'content-type': 'application/json', 'content-length': String(body.length) };
        const req = request(url, { method: 'POST', agent, headers }, (res) => {
          res.resume().on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`ingress answered ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(body);
      });
    const sender = async () => {
      while (next < events) await post(next++);
    };
    await Promise.all(Array.from({ length: 16 }, sender));
    await all;
    rates.push(events / ((performance.now() - started) / 1000));
    agent.destroy();
    ingress.close();
    subscriber.close();
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  }
  const rate = median(rates);
  return { id: 'B5', measure: `embedded broker, ${events} events in and delivered`, value: rate, unit: 'events/s', target: '≥ 2,000/s', met: rate >= 2000 };
}
