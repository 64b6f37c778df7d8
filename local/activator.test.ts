import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../shared/log';
import { tempDir } from '../test/support';
import { Activator } from './activator';

/** A stand-in function process: logs "listening" like the bundles do, and reports how many requests it holds at once. */
const fakeFunction = `
import { createServer } from 'node:http';
let active = 0, most = 0;
const server = createServer(async (req, res) => {
  most = Math.max(most, ++active);
  await new Promise((r) => setTimeout(r, Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? 0)));
  active--;
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pid: process.pid, most, env: process.env.GREETING }));
});
server.listen(Number(process.env.PORT), process.env.HOST, () => console.log(JSON.stringify({ msg: 'listening', port: server.address().port })));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
`;

describe('activator', () => {
  let bundle: string;
  const servers: Server[] = [];
  const log = memoryLogger();

  beforeAll(async () => {
    bundle = join(await tempDir(), 'fake.mjs');
    await writeFile(bundle, fakeFunction);
  });
  afterAll(() => servers.forEach((s) => s.close()));

  const start = async (options: { containerConcurrency?: number; idleMs?: number } = {}) => {
    const activator = new Activator({ name: 'fake', command: [process.execPath, bundle], env: { GREETING: 'hi' }, containerConcurrency: options.containerConcurrency ?? 0, idleMs: options.idleMs ?? 60_000, log, output: () => {} });
    const server = createServer(activator.handle);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { activator, url, get: async (path = '/') => (await fetch(`${url}${path}`)).json() as Promise<{ pid: number; most: number; env: string }> };
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

  it('lets requests run side by side without a limit', async () => {
    const { activator, get } = await start();
    const answers = await Promise.all([get('/?ms=200'), get('/?ms=200'), get('/?ms=200')]);
    expect(Math.max(...answers.map((a) => a.most))).toBe(3);
    await activator.stop();
  });

  it('scales to zero after the idle period, and starts again on the next request', async () => {
    const { activator, get } = await start({ idleMs: 100 });
    const first = await get();
    await new Promise((r) => setTimeout(r, 400));
    expect(activator.running).toBe(false);
    expect(log.lines.some((l) => l.msg === 'scaled to zero' && l.function === 'fake')).toBe(true);
    const second = await get();
    expect(second.pid).not.toBe(first.pid);
    expect(activator.starts).toBe(2);
    await activator.stop();
  });

  it('answers 502 with a problem when the function cannot start', async () => {
    const broken = new Activator({ name: 'broken', command: [process.execPath, join(bundle, '..', 'missing.mjs')], env: {}, containerConcurrency: 0, idleMs: 1000, log, output: () => {} });
    const server = createServer(broken.handle);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});
