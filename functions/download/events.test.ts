import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job, JobStore } from '../../shared/jobs/store';
import { generateLinkKey, linkSigner, type Links } from '../../shared/links';
import { memoryLogger } from '../../shared/log';
import type { Stores } from '../../shared/stores';
import { fileStores } from '../../test/stores';
import { alice, bob, tempDir, testKeys, type TestKeys } from '../../test/support';
import { createApp } from './app';
import { connect, type Message } from '../../test/sse';
import { changesAfter, type JobEventsOptions } from './events';

const summary = (messages: Message[]) =>
  messages.map((m) => (m.event === 'progress' ? `${m.id} progress ${JSON.parse(m.data!).percent}` : `${m.id} ${m.event} ${JSON.parse(m.data!).status}`));

describe('job events: the replay rule', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  const job: Job = {
    id: 'j',
    owner: 'o',
    filename: 'a.mp4',
    status: 'converting',
    createdAt: at,
    updatedAt: at,
    revision: 7,
    transitions: [
      { status: 'uploaded', revision: 1, at },
      { status: 'converting', revision: 2, at },
      { status: 'uploaded', revision: 4, at },
      { status: 'converting', revision: 5, at },
    ],
    progress: { percent: 40, revision: 7 },
  };
  const ids = (after: number, of = job) => changesAfter(of, after).map((e) => `${e.revision} ${e.event}`);

  it('sends every status entered after the last id seen, then the latest progress if newer', () => {
    expect(ids(0)).toEqual(['1 status', '2 status', '4 status', '5 status', '7 progress']);
    expect(ids(3)).toEqual(['4 status', '5 status', '7 progress']);
    expect(ids(5)).toEqual(['7 progress']);
    expect(ids(6)).toEqual(['7 progress']);
    expect(ids(7)).toEqual([]);
  });

  it('shows each status as the job was then: the outcome only with the final one', () => {
    const converted: Job = {
      ...job,
      status: 'converted',
      revision: 8,
      transitions: [...job.transitions, { status: 'converted', revision: 8, at }],
      progress: undefined,
      mp3: { id: 'j', durationSeconds: 1, sizeBytes: 2 },
    };
    const events = changesAfter(converted, 0);
    expect(events.map((e) => `${e.revision} ${e.event}`)).toEqual(['1 status', '2 status', '4 status', '5 status', '8 status']);
    expect(events.slice(0, -1).every((e) => e.event === 'status' && !e.job.mp3)).toBe(true);
    expect(events.at(-1)).toMatchObject({ job: { status: 'converted', mp3: { id: 'j' } } });
  });
});

describe('GET /jobs/:id/events over HTTP', () => {
  let stores: Stores;
  let keys: TestKeys;
  let links: Links;
  let token: string;
  const log = memoryLogger();
  const servers: Server[] = [];
  let reads = 0;

  /** The download app on a real port, its job store counting reads. */
  const start = async (events: JobEventsOptions = { pollMs: 20, heartbeatMs: 60_000 }) => {
    const jobs = new Proxy(stores.jobs, {
      get(target, prop) {
        if (prop === 'get') return (id: string) => (reads++, target.get(id));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as JobStore;
    const app = createApp({ ...stores, jobs, verify: keys.verify, links, log, events });
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server)) as Server;
    });
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const newJob = async () => (await stores.jobs.create({ id: randomUUID(), owner: alice.id, filename: 'talk.mp4' })).id;
  const ended = (jobId: string) => log.lines.find((l) => l.msg === 'event stream ended' && l.jobId === jobId);
  const eventually = async (check: () => unknown) => {
    while (!check()) await new Promise((r) => setTimeout(r, 10));
  };

  beforeAll(async () => {
    const dir = await tempDir();
    keys = await testKeys(dir);
    stores = await fileStores(dir);
    links = await linkSigner({ keys: [generateLinkKey()] }, 3600);
    token = await keys.tokenFor(alice);
  });
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    await stores.close();
  });

  it('sends the changes in order as they happen, and ends after the final status with its links', async () => {
    const url = await start();
    const id = await newJob();
    const stream = await connect(`${url}/jobs/${id}/events`, token);
    expect(stream.res.status).toBe(200);
    expect(stream.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.res.headers.get('cache-control')).toBe('no-cache');
    expect(stream.res.headers.get('x-accel-buffering')).toBe('no');
    expect(stream.res.headers.get('content-encoding')).toBeNull();

    const seen: Message[] = [];
    // Each change is made once the one before has arrived, so none is folded into a later one.
    const next = async (stop: (m: Message) => boolean) => seen.push(...(await stream.until(stop)));
    await next((m) => m.event === 'status');
    const conversion = (await stores.jobs.startConversion(id, 60_000))!;
    await next((m) => m.event === 'status');
    await stores.jobs.reportProgress(id, conversion, 30);
    await next((m) => m.event === 'progress');
    await stores.jobs.reportProgress(id, conversion, 60);
    await next((m) => m.event === 'progress');
    await stores.jobs.finishConversion(id, { id, durationSeconds: 60, sizeBytes: 1000 });
    seen.push(...(await stream.rest()));

    expect(stream.ended()).toBe(true);
    expect(summary(seen)).toEqual(['1 status uploaded', '2 status converting', '3 progress 30', '4 progress 60', '5 status converted']);
    expect(JSON.parse(seen.at(-1)!.data!)).toMatchObject({
      id,
      status: 'converted',
      mp3: { id, durationSeconds: 60, sizeBytes: 1000 },
      downloadUrl: `/download/${id}`,
      signedUrl: expect.stringContaining(`/download/${id}?sig=`),
    });
    expect(JSON.parse(seen[1]!.data!)).not.toHaveProperty('downloadUrl');
    expect(ended(id)).toMatchObject({ reason: 'final status sent', lastEventId: 5 });
  });

  it('ends after a failure with its reason', async () => {
    const url = await start();
    const id = await newJob();
    await stores.jobs.startConversion(id, 60_000);
    await stores.jobs.failConversion(id, 'The video has no audio track.');
    const stream = await connect(`${url}/jobs/${id}/events`, token);
    const seen = await stream.rest();
    expect(summary(seen)).toEqual(['1 status uploaded', '2 status converting', '3 status failed']);
    expect(JSON.parse(seen.at(-1)!.data!)).toMatchObject({ status: 'failed', error: 'The video has no audio track.' });
  });

  it('gives a reconnect with Last-Event-ID exactly what it missed, through a retry', async () => {
    const url = await start();
    const id = await newJob();
    const first = (await stores.jobs.startConversion(id, 60_000))!;
    await stores.jobs.reportProgress(id, first, 10);
    const stream = await connect(`${url}/jobs/${id}/events`, token);
    const before = await stream.until((m) => m.event === 'progress');
    expect(summary(before)).toEqual(['1 status uploaded', '2 status converting', '3 progress 10']);
    stream.close();

    // While it is away: more progress, a retry, progress of the new attempt.
    await stores.jobs.reportProgress(id, first, 20);
    await stores.jobs.releaseConversion(id);
    const second = (await stores.jobs.startConversion(id, 60_000))!;
    await stores.jobs.reportProgress(id, second, 5);
    await stores.jobs.reportProgress(id, second, 15);

    const again = await connect(`${url}/jobs/${id}/events`, token, { 'last-event-id': before.at(-1)!.id! });
    const missed = await again.until((m) => m.event === 'progress');
    expect(summary(missed)).toEqual(['5 status uploaded', '6 status converting', '8 progress 15']);
    await stores.jobs.finishConversion(id, { id, durationSeconds: 1, sizeBytes: 1 });
    expect(summary(await again.rest())).toEqual(['9 status converted']);

    // Having seen the final status, a reconnect is told nothing more and the stream ends.
    const done = await connect(`${url}/jobs/${id}/events`, token, { 'last-event-id': '9' });
    expect(await done.rest()).toEqual([]);
  });

  it('sends a comment line whenever the stream has been quiet for the heartbeat interval', async () => {
    const url = await start({ pollMs: 20, heartbeatMs: 40 });
    const id = await newJob();
    const stream = await connect(`${url}/jobs/${id}/events`, token);
    const got = await stream.until((m) => m.comment !== undefined, { comments: true });
    expect(got.map((m) => m.event ?? `:${m.comment}`)).toEqual(['status', ':keep-alive']);
    expect(await stream.until((m) => m.comment !== undefined, { comments: true })).toEqual([{ comment: 'keep-alive' }]);
    stream.close();
  });

  it('stops polling the store once the client has gone', async () => {
    const url = await start({ pollMs: 10, heartbeatMs: 60_000 });
    const id = await newJob();
    const stream = await connect(`${url}/jobs/${id}/events`, token);
    await stream.until((m) => m.event === 'status');
    const polling = reads;
    await eventually(() => reads > polling + 2); // it polls while the client is there
    stream.close();
    await eventually(() => ended(id));
    expect(ended(id)).toMatchObject({ reason: 'client gone', lastEventId: 1 });
    const after = reads;
    await new Promise((r) => setTimeout(r, 200)); // twenty poll intervals
    expect(reads).toBe(after);
  });

  it('ends every stream when the process drains', async () => {
    const closing = new AbortController();
    const url = await start({ pollMs: 20, heartbeatMs: 60_000, closing: closing.signal });
    const id = await newJob();
    const stream = await connect(`${url}/jobs/${id}/events`, token);
    await stream.until((m) => m.event === 'status');
    closing.abort();
    expect(await stream.rest()).toEqual([]);
    expect(stream.ended()).toBe(true);
    await eventually(() => ended(id));
    expect(ended(id)).toMatchObject({ reason: 'draining' });
  });

  it.each([
    ['someone else\'s job', 404, async () => ({ id: await newJob(), token: await keys.tokenFor(bob), headers: {} })],
    ['an unknown job', 404, async () => ({ id: randomUUID(), token, headers: {} })],
    ['no token', 401, async () => ({ id: await newJob(), token: 'not-a-token', headers: {} })],
    ['a Last-Event-ID that is no id of ours', 400, async () => ({ id: await newJob(), token, headers: { 'last-event-id': 'abc' } })],
  ])('answers %s with %i problem+json', async (_case, status, given) => {
    const url = await start();
    const { id, token: bearer, headers } = await given();
    const res = await fetch(`${url}/jobs/${id}/events`, { headers: { authorization: `Bearer ${bearer}`, ...headers } });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});
