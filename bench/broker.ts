/**
 * B5: events per second a broker takes in at its ingress and delivers to a subscriber that answers
 * 202 at once, 16 senders each waiting for its 202, for each broker below in one run (rounds
 * interleaved, medians compared), each in processes of its own beside the bench's, which sends
 * the load and is the subscriber:
 * - earshot's embedded broker (local/broker.ts, what `make dev` runs): the convert Trigger's
 *   queue as files, written before the 202 and removed once delivered; its queue on the disk of
 *   the checkout (as make dev's .earshot), and again on tmpfs where there is one (/dev/shm);
 * - a minimal Node HTTP forwarder doing the same hops with nothing kept: POST in, POST to the
 *   subscriber, its 2xx answered as 202 (at most the Trigger's parallelism deliveries at once);
 * - with `rabbitmq`, eventing-rabbitmq's ingress and dispatcher on RabbitMQ, which the embedded
 *   broker stands in for.
 * The CPU time each broker's processes spent per event (from /proc) is reported beside the rates:
 * unlike a rate it hardly moves when other work shares the machine.
 */
import { Agent, createServer, request, type Server } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { readTopology, type TriggerSpec } from '../local/topology';
import { benchDir } from './inputs';
import { median, type Row } from './measure';
import { startRealBroker } from './rabbitmq';
import { cpuSeconds } from './requests';

interface Broker {
  url: string;
  /** The processes that do its work, whose CPU time is counted. */
  pids(): number[];
  /** What those are, where it needs saying. */
  processes?: string;
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

/**
 * Node running `code` (an ES module; `--import tsx` lets it import the repository's TypeScript),
 * which prints the port it listens on and ends with this process (IPC channel).
 */
async function spawnListener(code: string, env: Record<string, string>): Promise<ChildProcess & { url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `process.on('disconnect', () => process.exit(0));\n${code}`], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`broker process exited with ${code} before listening`);
  });
  const [line] = (await Promise.race([once(createInterface({ input: child.stdout! }), 'line'), exited])) as [string];
  return Object.assign(child, { url: `http://127.0.0.1:${line.trim()}/` });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/**
 * local/broker.ts with the convert Trigger alone, as the manifests define it (its parallelism
 * too), on a fresh file queue in a folder `under`, in a process of its own as in `make dev` (where
 * it shares the local runtime's). Logging is off, as in the forwarder.
 */
async function startEmbeddedBroker(trigger: TriggerSpec, subscriber: string, under: string): Promise<Broker> {
  await mkdir(under, { recursive: true });
  const dir = await mkdtemp(join(under, 'earshot-bench-broker-'));
  const module = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const code = `
const { createServer } = await import('node:http');
const { brokerIngress, startDispatch } = await import(${module('../local/broker.ts')});
const { fileQueue } = await import(${module('../local/queue.ts')});
const { createLogger } = await import(${module('../shared/log.ts')});
const { trigger, subscriber, dir } = JSON.parse(process.env.EARSHOT_BENCH_BROKER);
const log = createLogger({}, { level: 'silent' });
const queue = await fileQueue(dir, [trigger]);
startDispatch({ queue, triggers: [trigger], resolve: () => subscriber, log });
const ingress = createServer(brokerIngress(queue, log));
ingress.listen(0, '127.0.0.1', () => console.log(ingress.address().port));`;
  try {
    const child = await spawnListener(code, { EARSHOT_BENCH_BROKER: JSON.stringify({ trigger, subscriber, dir: join(dir, 'queue') }) });
    return {
      url: child.url,
      pids: () => [child.pid!],
      stop: async () => {
        await stopChild(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The baseline: the same hops with nothing kept and nothing checked. Each POST is sent on to the
 * subscriber with its CloudEvent headers and body, and answered 202 once the subscriber answered
 * 2xx (502 otherwise); at most `parallelism` deliveries at once, as the Trigger allows.
 */
async function startForwarder(subscriber: string, parallelism: number): Promise<Broker> {
  const code = `
const http = await import('node:http');
const { subscriber, parallelism } = JSON.parse(process.env.EARSHOT_BENCH_FORWARDER);
const agent = new http.Agent({ keepAlive: true, maxSockets: parallelism });
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const headers = { 'content-length': body.length };
    for (const [name, value] of Object.entries(req.headers)) if (name.startsWith('ce-') || name === 'content-type') headers[name] = value;
    const out = http.request(subscriber, { method: 'POST', agent, headers }, (answer) => {
      answer.resume().on('end', () => res.writeHead(answer.statusCode >= 200 && answer.statusCode < 300 ? 202 : 502).end());
    });
    out.on('error', () => res.writeHead(502).end());
    out.end(body);
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = await spawnListener(code, { EARSHOT_BENCH_FORWARDER: JSON.stringify({ subscriber, parallelism }) });
  return { url: child.url, pids: () => [child.pid!], stop: () => stopChild(child) };
}

interface Measured {
  rate: number;
  /** CPU µs the broker's processes spent per event; NaN where there is no /proc. */
  cpuUs: number;
}

/** `events` POSTed by 16 keep-alive senders, each waiting for its 202; the rate at which they reach the subscriber. */
async function eventsPerSecond(broker: Broker, subscriber: StandIn, events: number, type: string, run: string): Promise<Measured> {
  const delivered = subscriber.receive(events);
  const cpu = () => broker.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const cpuBefore = cpu();
  const started = performance.now();
  let next = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const post = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const body = `{"i":${i}}`;
      const headers = { 'ce-specversion': '1.0', 'ce-id': `bench-${run}-${i}`, 'ce-source': '/bench', 'ce-type': type, 'content-type': 'application/json', 'content-length': String(body.length) };
      const req = request(broker.url, { method: 'POST', agent, headers }, (res) => {
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
  const rate = events / ((performance.now() - started) / 1000);
  return { rate, cpuUs: ((cpu() - cpuBefore) * 1e6) / events };
}

const us = (m: Measured) => `${m.cpuUs.toFixed(0)} µs`;

/** Memory-backed on Linux. */
const tmpfs = '/dev/shm';

export async function benchBroker({ events, runs, rabbitmq = false }: { events: number; runs: number; rabbitmq?: boolean }): Promise<Row[]> {
  const trigger = readTopology().triggers.find((t) => t.subscriber === 'convert')!;
  const type = trigger.filter.type!;
  const subscriber = await standIn(type);
  const started: Broker[] = [];
  const start = async (broker: Promise<Broker>) => {
    const b = await broker;
    started.push(b);
    return b;
  };
  try {
    // Each broker runs all along: one start, then rounds of all of them in turn.
    const brokers: { name: string; broker: Broker }[] = [
      { name: 'forwarder', broker: await start(startForwarder(subscriber.url, trigger.parallelism)) },
      // Its queue on the disk make dev's data dir is on (.bench beside .earshot) …
      { name: 'embedded', broker: await start(startEmbeddedBroker(trigger, subscriber.url, join(benchDir, 'broker'))) },
      // … and in memory, which tells the file system's share of its cost from its own.
      ...(existsSync(tmpfs) ? [{ name: 'tmpfs', broker: await start(startEmbeddedBroker(trigger, subscriber.url, tmpfs)) }] : []),
      ...(rabbitmq ? [{ name: 'rabbitmq', broker: await start(startRealBroker(subscriber.url)) }] : []),
    ];
    let run = 0;
    const measure = (b: { name: string; broker: Broker }, count: number) => eventsPerSecond(b.broker, subscriber, count, type, `${b.name}-${run++}`);
    // Warm (JIT, connections, the real broker's channels), not counted.
    for (const b of brokers) await measure(b, Math.min(events, 500));
    const results = new Map(brokers.map((b) => [b.name, [] as Measured[]]));
    for (let r = 0; r < runs; r++) for (const b of brokers) results.get(b.name)!.push(await measure(b, events));
    const mid = (name: string): Measured | undefined => {
      const all = results.get(name);
      return all && { rate: median(all.map((m) => m.rate)), cpuUs: median(all.map((m) => m.cpuUs)) };
    };
    const [embedded, forwarder, inMemory, real] = [mid('embedded')!, mid('forwarder')!, mid('tmpfs'), mid('rabbitmq')];

    const what = `${events} events in and delivered`;
    const toForwarder = embedded.rate / forwarder.rate;
    const rows: Row[] = [
      {
        id: 'B5',
        measure: `embedded broker (make dev's; queue on disk), ${what}`,
        value: embedded.rate,
        unit: 'events/s',
        baseline: { name: 'minimal Node HTTP forwarder', value: forwarder.rate },
        ratio: toForwarder,
        // The same two HTTP hops (about 90 µs of CPU here), plus the durability a broker owes: a
        // file written before the 202 and removed once delivered. Created, written and removed
        // in sequence, such a file costs 25–35 µs here: a durable broker can keep over half the rate.
        target: '≥ 0.5×',
        met: toForwarder >= 0.5,
        note: `CPU per event ${us(embedded)} vs ${us(forwarder)}${inMemory ? `; queue on tmpfs: ${inMemory.rate.toFixed(0)} events/s (${(inMemory.rate / forwarder.rate).toFixed(2)}×), CPU per event ${us(inMemory)}` : ''}`,
      },
    ];
    if (real) {
      const toReal = embedded.rate / real.rate;
      rows.push({
        id: 'B5',
        measure: `embedded broker against eventing-rabbitmq ingress + dispatcher (RabbitMQ), ${what}`,
        value: embedded.rate,
        unit: 'events/s',
        baseline: { name: 'RabbitMQ data plane', value: real.rate },
        ratio: toReal,
        // One Node thread against three processes (Go ingress, Go dispatcher, Erlang RabbitMQ) that use both cores: 0.5× is parity per core.
        target: '≥ 0.5×',
        met: toReal >= 0.5,
        note: `CPU per event ${us(embedded)} vs ${us(real)} (${brokers.find((b) => b.name === 'rabbitmq')!.broker.processes})`,
      });
    }
    return rows;
  } finally {
    for (const broker of started.reverse()) await broker.stop();
    await subscriber.close();
  }
}
