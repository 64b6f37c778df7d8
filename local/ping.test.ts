import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../shared/log';
import { nextFiring, pingEventType, pingRequest, startPings } from './ping';
import type { PingSourceSpec } from './topology';

const sweep: PingSourceSpec = { name: 'sweep', namespace: 'earshot', schedule: '*/15 * * * *', contentType: 'application/json', data: '{"task":"sweep"}', sink: 'sweeper' };

const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** A sink answering `status`, keeping what it received. */
async function sink(status: number) {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    received.push({ headers: req.headers, body });
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closing.push(() => new Promise((r) => server.close(() => r())));
  return { received, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const until = async (check: () => boolean) => {
  for (const end = Date.now() + 10_000; !check(); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) throw new Error('timed out');
};

describe('nextFiring', () => {
  it('follows the cron schedule, in UTC unless the source names a zone', () => {
    expect(nextFiring(sweep, new Date('2026-03-01T10:07:30Z'))).toEqual(new Date('2026-03-01T10:15:00Z'));
    expect(nextFiring(sweep, new Date('2026-03-01T10:15:00Z'))).toEqual(new Date('2026-03-01T10:30:00Z'));
    const nightly = { ...sweep, schedule: '0 3 * * *' };
    expect(nextFiring(nightly, new Date('2026-07-01T12:00:00Z'))).toEqual(new Date('2026-07-02T03:00:00Z'));
    expect(nextFiring({ ...nightly, timezone: 'Europe/Paris' }, new Date('2026-07-01T12:00:00Z'))).toEqual(new Date('2026-07-02T01:00:00Z'));
  });
});

describe('pingRequest', () => {
  it("is Knative's ping event in binary mode: its source names the PingSource, its body is the data", () => {
    const { headers, body } = pingRequest(sweep, new Date('2026-03-01T10:15:00Z'));
    expect(headers).toEqual({
      'ce-specversion': '1.0',
      'ce-type': pingEventType,
      'ce-source': '/apis/v1/namespaces/earshot/pingsources/sweep',
      'ce-id': expect.stringMatching(/^[0-9a-f-]{36}$/),
      'ce-time': '2026-03-01T10:15:00.000Z',
      'content-type': 'application/json',
    });
    expect(body).toBe('{"task":"sweep"}');
    expect(pingRequest(sweep, new Date()).headers['ce-id']).not.toBe(headers['ce-id']);
    expect(pingRequest({ name: 'bare', namespace: 'ns', schedule: '* * * * *', sink: 's' }, new Date())).toMatchObject({ body: '', headers: expect.not.objectContaining({ 'content-type': expect.anything() }) });
  });
});

describe('startPings', () => {
  it('pings the sink every everySeconds, logs each answer, and pings no more once stopped', async () => {
    const ok = await sink(200);
    const failing = await sink(503);
    const log = memoryLogger();
    const pings = startPings({
      sources: [sweep, { ...sweep, name: 'other', sink: 'broken' }],
      resolve: (name) => (name === 'sweeper' ? ok.url : failing.url),
      timeoutMs: () => 5000,
      log,
      everySeconds: 0.1,
    });
    await until(() => ok.received.length >= 2 && failing.received.length >= 1);
    await pings.stop();
    const count = ok.received.length;
    expect(ok.received[0]).toMatchObject({ body: '{"task":"sweep"}', headers: { 'ce-type': pingEventType, 'ce-source': '/apis/v1/namespaces/earshot/pingsources/sweep' } });
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'pinged', pingSource: 'sweep', sink: 'sweeper', status: 200 }));
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'pinged', pingSource: 'other', sink: 'broken', status: 503 }));
    await new Promise((r) => setTimeout(r, 300));
    expect(ok.received).toHaveLength(count);
  });

  it('logs a sink it cannot reach, and refuses a schedule it cannot read', async () => {
    const log = memoryLogger();
    const pings = startPings({ sources: [sweep], resolve: () => 'http://127.0.0.1:1', timeoutMs: () => 5000, log, everySeconds: 0.05 });
    await until(() => log.lines.some((l) => l.msg === 'ping failed'));
    await pings.stop();
    expect(() => startPings({ sources: [{ ...sweep, schedule: 'every day' }], resolve: () => '', timeoutMs: () => 0, log })).toThrow();
  });
});
