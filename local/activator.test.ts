import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../shared/log';
import { tempDir } from '../test/support';
import { Activator } from './activator';

/**
 * A stand-in function process: logs "listening" like the bundles do, and reports how many
 * requests it holds at once. `?gate=<file>` holds the request until that file exists (it logs
 * "holding" first), so a test decides when a request ends instead of guessing how long it takes.
 */
const fakeFunction = `
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
let active = 0, most = 0;
const server = createServer(async (req, res) => {
  most = Math.max(most, ++active);
  const query = new URL(req.url, 'http://x').searchParams;
  await new Promise((r) => setTimeout(r, Number(query.get('ms') ?? 0)));
  const gate = query.get('gate');
  if (gate) {
    console.log(JSON.stringify({ msg: 'holding', gate }));
    while (!existsSync(gate)) await new Promise((r) => setTimeout(r, 10));
  }
  active--;
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pid: process.pid, most, env: process.env.GREETING }));
});
server.listen(Number(process.env.PORT), process.env.HOST, () => console.log(JSON.stringify({ msg: 'listening', port: server.address().port })));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
`;

/** Polls; never a bound on how long something may take. */
const until = async (check: () => boolean) => {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
};

describe('activator', () => {
  let bundle: string;
  const servers: Server[] = [];
  const log = memoryLogger();

  beforeAll(async () => {
    bundle = join(await tempDir(), 'fake.mjs');
    await writeFile(bundle, fakeFunction);
  });
  afterAll(() => servers.forEach((s) => s.close()));

  const start = async (options: { containerConcurrency?: number; maxInstances?: number; idleMs?: number } = {}) => {
    const held = new Set<string>();
    const activator = new Activator({
      name: 'fake',
      command: [process.execPath, bundle],
      env: { GREETING: 'hi' },
      containerConcurrency: options.containerConcurrency ?? 0,
      maxInstances: options.maxInstances ?? 1,
      idleMs: options.idleMs ?? 60_000,
      log,
      output: (line) => {
        const entry = JSON.parse(line) as { msg: string; gate?: string };
        if (entry.msg === 'holding') held.add(entry.gate!);
      },
    });
    const server = createServer(activator.handle);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const get = async (path = '/') => (await fetch(`${url}${path}`)).json() as Promise<{ pid: number; most: number; env: string }>;
    const dir = await tempDir();
    let gates = 0;
    /** A request the function holds until `open()`; `holding` once the function has it. */
    const gated = () => {
      const gate = join(dir, `gate-${++gates}`);
      return { answer: get(`/?gate=${encodeURIComponent(gate)}`), holding: () => until(() => held.has(gate)), open: () => writeFile(gate, '') };
    };
    return { activator, url, get, gated };
  };

  it('starts the function on the first request, which waits for it, with the env it was given', async () => {
    const { activator, get } = await start();
    expect(activator.running).toBe(false);
    const answer = await get();
    expect(answer.env).toBe('hi');
    expect(activator.running).toBe(true);
    expect(activator.starts).toBe(1);
    expect(log.lines.some((l) => l.msg === 'cold start' && l.function === 'fake')).toBe(true);
    await activator.stop();
  });

  it('queues requests beyond containerConcurrency', async () => {
    const { activator, get } = await start({ containerConcurrency: 1 });
    const answers = await Promise.all([get('/?ms=100'), get('/?ms=100'), get('/?ms=100')]);
    expect(Math.max(...answers.map((a) => a.most))).toBe(1);
    await activator.stop();
  });

  it('gives a queued request\'s place back when its client goes away: later requests still run', async () => {
    const { activator, get, url } = await start({ containerConcurrency: 1 });
    const first = get('/?ms=500');
    // Queued behind the first, then abandoned (as a killed dispatcher's requests are).
    const abandoned = Array.from({ length: 3 }, () => {
      const controller = new AbortController();
      const res = fetch(`${url}/?ms=0`, { signal: controller.signal }).catch((err: Error) => err.name);
      setTimeout(() => controller.abort(), 100);
      return res;
    });
    expect(await Promise.all(abandoned)).toEqual(['AbortError', 'AbortError', 'AbortError']);
    await first;
    const after = await Promise.race([get('/?ms=0'), new Promise((r) => setTimeout(() => r('still queued'), 60_000))]);
    expect(after).toMatchObject({ env: 'hi' });
    await activator.stop();
  });

  it('scales to zero after the idle period, and starts again on the next request', async () => {
    const since = log.lines.length;
    const { activator, get } = await start({ idleMs: 100 });
    const first = await get();
    await until(() => log.lines.slice(since).some((l) => l.msg === 'scaled to zero' && l.function === 'fake'));
    expect(activator.running).toBe(false);
    const second = await get();
    expect(second.pid).not.toBe(first.pid);
    expect(activator.starts).toBe(2);
    await activator.stop();
  });

  it('starts a second instance for a request that finds the first at its containerConcurrency, when max-scale allows', async () => {
    const { activator, gated } = await start({ containerConcurrency: 1, maxInstances: 2 });
    const first = gated();
    await first.holding();
    const second = gated();
    await second.holding(); // while the first is still held: only another instance can have taken it
    expect(activator.size).toBe(2);
    await Promise.all([first.open(), second.open()]);
    const [a, b] = await Promise.all([first.answer, second.answer]);
    expect(a.pid).not.toBe(b.pid);
    expect(activator.starts).toBe(2);
    await activator.stop();
  });

  it('queues that request instead when max-scale is 1, and hands it to the instance once its place is free', async () => {
    const { activator, gated } = await start({ containerConcurrency: 1, maxInstances: 1 });
    const first = gated();
    await first.holding();
    const second = gated();
    await until(() => activator.queued === 1);
    expect(activator.size).toBe(1);
    await first.open();
    await second.holding();
    await second.open();
    const [a, b] = await Promise.all([first.answer, second.answer]);
    expect(b.pid).toBe(a.pid);
    expect(activator.starts).toBe(1);
    await activator.stop();
  });

  it('lets requests run side by side on one instance when containerConcurrency is 0 (no limit), whatever max-scale allows', async () => {
    const { activator, gated } = await start({ containerConcurrency: 0, maxInstances: 4 });
    const requests = [gated(), gated(), gated()];
    for (const r of requests) await r.holding();
    expect(activator.size).toBe(1);
    await Promise.all(requests.map((r) => r.open()));
    const answers = await Promise.all(requests.map((r) => r.answer));
    expect(new Set(answers.map((a) => a.pid)).size).toBe(1);
    expect(Math.max(...answers.map((a) => a.most))).toBe(3);
    expect(activator.starts).toBe(1);
    await activator.stop();
  });

  it('stops idle instances one by one, each after its own idle period: a busy one keeps running', async () => {
    const scaleLog = log.lines.length;
    const { activator, gated } = await start({ containerConcurrency: 1, maxInstances: 2, idleMs: 50 });
    const first = gated();
    await first.holding();
    const second = gated();
    await second.holding();
    expect(activator.size).toBe(2);

    await first.open();
    await first.answer;
    const scaled = () => log.lines.slice(scaleLog).filter((l) => l.function === 'fake' && /^scaled/.test(String(l.msg)));
    await until(() => scaled().length === 1);
    expect(scaled()).toEqual([expect.objectContaining({ msg: 'scaled down', instances: 1 })]);
    expect(activator.size).toBe(1);
    expect(activator.running).toBe(true);

    await second.open();
    await second.answer;
    await until(() => scaled().length === 2);
    expect(scaled()[1]).toMatchObject({ msg: 'scaled to zero', instances: 0 });
    expect(activator.size).toBe(0);
    expect(activator.running).toBe(false);
    await activator.stop();
  });

  it('answers 502 with a problem when the function cannot start', async () => {
    const broken = new Activator({ name: 'broken', command: [process.execPath, join(bundle, '..', 'missing.mjs')], env: {}, containerConcurrency: 0, maxInstances: 1, idleMs: 1000, log, output: () => {} });
    const server = createServer(broken.handle);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});
