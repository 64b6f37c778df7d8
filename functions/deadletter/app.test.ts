import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeMongo } from '../../shared/mongo';
import { dropDatabase, mongoReachable, mongoTestUrl } from '../../test/mongo';
import { describeWithService } from '../../test/services';
import { EventTypes, makeEvent, toHttp } from '../../shared/events';
import { memoryLogger } from '../../shared/log';
import { alice, tempDir, testKeys, type TestKeys } from '../../test/support';
import { createApp } from './app';
import { fileDeadLetters, mongoDeadLetters, type DeadLetterStore } from './letters';

const mongoAvailable = await mongoReachable();
deadLetterSuite('files', async (dir) => fileDeadLetters(dir));
describeWithService('the MongoDB-wire server', mongoAvailable, 'dead letters in MongoDB', () => {
  const url = mongoTestUrl('deadletters');
  afterAll(async () => {
    await closeMongo(url);
    await dropDatabase(url);
  });
  deadLetterSuite('MongoDB', async () => mongoDeadLetters(url));
});

function deadLetterSuite(store: string, open: (dir: string) => Promise<DeadLetterStore>) {
  describe(`deadletter (${store})`, () => {
    let keys: TestKeys;
    let letters: DeadLetterStore;
    let admin: string;
    let user: string;
    let replayed: { headers: Record<string, string>; body: string }[];
    let brokerDown = false;
    let app: ReturnType<typeof createApp>;
    const log = memoryLogger();

    const event = makeEvent(EventTypes.audioConverted, '/earshot/convert', 'vid-1', {
      videoId: 'vid-1', mp3Id: 'vid-1', owner: { id: alice.id, email: alice.email }, filename: 'a.mp3', durationSeconds: 1, sizeBytes: 10,
    });
    /** What the RabbitMQ dispatcher sends after the last retry: the event plus Knative's error extensions. */
    const deadDelivery = () => {
      const { headers, body } = toHttp(event);
      return { method: 'POST', headers: { ...headers, 'ce-knativeerrordest': 'http://notify.earshot.svc.cluster.local', 'ce-knativeerrorcode': '503' }, body };
    };
    const asAdmin = (path: string, init: RequestInit = {}) => app.request(path, { ...init, headers: { authorization: `Bearer ${admin}` } });

    beforeAll(async () => {
      const dir = await tempDir();
      keys = await testKeys(dir);
      letters = await open(dir);
      admin = await keys.tokenFor({ id: 'root', email: 'root@example.com', role: 'admin' });
      user = await keys.tokenFor(alice);
      app = createApp({
        letters,
        verify: keys.verify,
        log,
        replay: async (headers, body) => {
          if (brokerDown) throw new Error('broker down');
          replayed.push({ headers, body: Buffer.from(body).toString('utf8') });
        },
      });
    });
    beforeEach(() => {
      replayed = [];
      brokerDown = false;
    });

    it('keeps a dead-lettered event and lists it for admins with where and how delivery failed', async () => {
      expect((await app.request('/', deadDelivery())).status).toBe(202);
      const list = (await (await asAdmin('/dead-letters')).json()) as Record<string, string>[];
      expect(list[0]).toMatchObject({ eventId: event.id, type: event.type, subject: 'vid-1', errorDest: 'http://notify.earshot.svc.cluster.local', errorCode: '503' });
      expect(log.lines.some((l) => l.msg === 'dead letter' && l.eventId === event.id)).toBe(true);
    });

    it('replays the event into the broker without the error extensions, then forgets it', async () => {
      await app.request('/', deadDelivery());
      const [letter] = (await (await asAdmin('/dead-letters')).json()) as { id: string }[];
      const res = await asAdmin(`/dead-letters/${letter!.id}/replay`, { method: 'POST' });
      expect(res.status).toBe(202);
      expect(replayed).toHaveLength(1);
      expect(replayed[0]!.headers).toMatchObject({ 'ce-id': event.id, 'ce-type': event.type });
      expect(Object.keys(replayed[0]!.headers).filter((h) => h.startsWith('ce-knativeerror'))).toEqual([]);
      expect(JSON.parse(replayed[0]!.body)).toEqual(event.data);
      expect((await asAdmin(`/dead-letters/${letter!.id}`)).status).toBe(404);
    });

    it('strips the error extensions of a structured-mode event too', async () => {
      const structured = { specversion: '1.0', id: 'e-2', type: 'com.example.x', source: '/x', knativeerrorcode: 500, knativeerrordest: 'http://x', data: { a: 1 } };
      await app.request('/', { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(structured) });
      const letter = ((await (await asAdmin('/dead-letters')).json()) as { id: string; eventId: string }[]).find((l) => l.eventId === 'e-2')!;
      await asAdmin(`/dead-letters/${letter.id}/replay`, { method: 'POST' });
      expect(JSON.parse(replayed[0]!.body)).toEqual({ specversion: '1.0', id: 'e-2', type: 'com.example.x', source: '/x', data: { a: 1 } });
    });

    it('keeps the letter when the broker does not take the replay (503)', async () => {
      await app.request('/', deadDelivery());
      const [letter] = (await (await asAdmin('/dead-letters')).json()) as { id: string }[];
      brokerDown = true;
      expect((await asAdmin(`/dead-letters/${letter!.id}/replay`, { method: 'POST' })).status).toBe(503);
      expect((await asAdmin(`/dead-letters/${letter!.id}`)).status).toBe(200);
    });

    it('keeps letters before it knows the broker, and answers replays 503 until then', async () => {
      const early = createApp({ letters, verify: keys.verify, log });
      expect((await early.request('/', deadDelivery())).status).toBe(202);
      const [letter] = (await (await early.request('/dead-letters', { headers: { authorization: `Bearer ${admin}` } })).json()) as { id: string }[];
      const res = await early.request(`/dead-letters/${letter!.id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } });
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(((await res.json()) as { detail: string }).detail).toMatch(/K_SINK/);
      expect((await asAdmin(`/dead-letters/${letter!.id}`)).status).toBe(200);
    });

    it('keeps even what is not a CloudEvent, for a human to look at', async () => {
      expect((await app.request('/', { method: 'POST', body: 'garbage', headers: { 'content-type': 'text/plain' } })).status).toBe(202);
    });

    it('deletes a letter; unknown ids are 404', async () => {
      await app.request('/', deadDelivery());
      const [letter] = (await (await asAdmin('/dead-letters')).json()) as { id: string }[];
      expect((await asAdmin(`/dead-letters/${letter!.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await asAdmin(`/dead-letters/${letter!.id}`, { method: 'DELETE' })).status).toBe(404);
      expect((await asAdmin('/dead-letters/../../etc/passwd')).status).toBe(404);
    });

    it('shows dead letters to admins only', async () => {
      expect((await app.request('/dead-letters')).status).toBe(401);
      const res = await app.request('/dead-letters', { headers: { authorization: `Bearer ${user}` } });
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
    });
  });
}
