import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../../shared/auth';
import { generateLinkKey, linkSigner } from '../../shared/links';
import { memoryLogger } from '../../shared/log';
import type { Stores } from '../../shared/stores';
import { fileStores } from '../../test/stores';
import { tempDir, testKeys, type TestKeys } from '../../test/support';
import { createApp } from './app';
import { decodeCursor, encodeCursor } from './list';

describe('GET /jobs', () => {
  let stores: Stores;
  let keys: TestKeys;
  let app: ReturnType<typeof createApp>;

  /** A user of their own with `count` jobs; their ids newest first. */
  const userWithJobs = async (count: number) => {
    const user: User = { id: `user-${randomUUID()}`, email: 'lister@example.com', role: 'user' };
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      if (i % 4 === 0) await new Promise((r) => setTimeout(r, 2)); // some share a millisecond, some do not
      ids.push((await stores.jobs.create({ id: randomUUID(), owner: user.id, filename: `${i}.mp4` })).id);
    }
    const jobs = await Promise.all(ids.map(async (id) => (await stores.jobs.get(id))!));
    jobs.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
    return { token: await keys.tokenFor(user), newestFirst: jobs.map((j) => j.id) };
  };
  const list = async (token: string, query = '') => app.request(`/jobs${query}`, { headers: { authorization: `Bearer ${token}` } });
  type Page = { jobs: { id: string }[]; nextCursor?: string };

  beforeAll(async () => {
    const dir = await tempDir();
    keys = await testKeys(dir);
    stores = await fileStores(dir);
    app = createApp({ ...stores, verify: keys.verify, links: await linkSigner({ keys: [generateLinkKey()] }, 3600), log: memoryLogger() });
  });

  it('pages through the caller\'s jobs, newest first, each once, and only theirs', async () => {
    const { token, newestFirst } = await userWithJobs(7);
    await userWithJobs(3); // someone else's
    const seen: string[] = [];
    let query = '?limit=3';
    for (;;) {
      const res = await list(token, query);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const page = (await res.json()) as Page;
      expect(page.jobs.length).toBeLessThanOrEqual(3);
      seen.push(...page.jobs.map((j) => j.id));
      if (!page.nextCursor) break;
      query = `?limit=3&cursor=${page.nextCursor}`;
    }
    expect(seen).toEqual(newestFirst);
  });

  it('shows each job as GET /jobs/:id does, links included', async () => {
    const { token, newestFirst } = await userWithJobs(1);
    const id = newestFirst[0]!;
    await stores.jobs.startConversion(id, 60_000);
    await stores.jobs.finishConversion(id, { id, durationSeconds: 1, sizeBytes: 1 });
    const page = (await (await list(token)).json()) as Page;
    const job = (await (await app.request(`/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    expect(Object.keys(page.jobs[0]!).sort()).toEqual(Object.keys(job).sort());
    expect(page.jobs[0]).toMatchObject({ id, status: 'converted', downloadUrl: `/download/${id}` });
    expect(page).not.toHaveProperty('nextCursor');
  });

  it('gives 20 by default and at most 100', async () => {
    const { token } = await userWithJobs(101);
    const first = (await (await list(token)).json()) as Page;
    expect(first.jobs).toHaveLength(20);
    expect(first.nextCursor).toEqual(expect.any(String));
    const most = (await (await list(token, '?limit=100')).json()) as Page;
    expect(most.jobs).toHaveLength(100);
    const last = (await (await list(token, `?limit=100&cursor=${most.nextCursor}`)).json()) as Page;
    expect(last.jobs).toHaveLength(1);
    expect(last).not.toHaveProperty('nextCursor');
  });

  it('answers an empty list for a user with no jobs, and for a cursor past the oldest', async () => {
    const { token } = await userWithJobs(0);
    expect(await (await list(token)).json()).toEqual({ jobs: [] });
    const past = encodeCursor({ createdAt: new Date(0), id: 'a' });
    expect(await (await list(token, `?cursor=${past}`)).json()).toEqual({ jobs: [] });
  });

  it.each([
    ['limit=0'],
    ['limit=101'],
    ['limit=-1'],
    ['limit=2.5'],
    ['limit=ten'],
    ['limit='],
    ['cursor='],
    ['cursor=short'],
    ['cursor=not%20a%20cursor%20at%20all'],
    [`cursor=${'A'.repeat(76)}`],
  ])('answers ?%s with a problem+json 400', async (query) => {
    const { token } = await userWithJobs(0);
    const res = await list(token, `?${query}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('answers 401 without a token', async () => {
    const res = await app.request('/jobs');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('reads every cursor of the right shape as a position, and gives back the one it made', () => {
    const at = { createdAt: new Date('2026-03-01T12:00:00.123Z'), id: 'b7c1e0f2-1111-4222-8333-944445555666' };
    expect(decodeCursor(encodeCursor(at))).toEqual(at);
    expect(decodeCursor('_'.repeat(75))).toMatchObject({ id: '_'.repeat(64) });
    expect(decodeCursor('_'.repeat(75))!.createdAt.getTime()).toBe(8.64e15);
  });
});
