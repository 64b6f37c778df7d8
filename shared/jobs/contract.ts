import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStore } from './store';

/** One suite every jobs adapter must pass. */
export function jobStoreContract(name: string, open: () => Promise<JobStore>): void {
  describe(`jobs: ${name}`, () => {
    let jobs: JobStore;
    beforeAll(async () => {
      jobs = await open();
    });
    afterAll(() => jobs?.close());

    const newJob = async () => (await jobs.create({ id: randomUUID(), owner: 'owner-1', ownerEmail: 'owner-1@example.com', filename: 'clip.mp4' })).id;
    const tick = () => new Promise((r) => setTimeout(r, 5));
    const mp3 = (id: string) => ({ id, durationSeconds: 61.25, sizeBytes: 123_456 });

    it('creates an uploaded job and reads it back', async () => {
      const id = await newJob();
      const job = await jobs.get(id);
      expect(job).toMatchObject({ id, owner: 'owner-1', ownerEmail: 'owner-1@example.com', filename: 'clip.mp4', status: 'uploaded' });
      expect(job!.createdAt).toBeInstanceOf(Date);
      expect(job).not.toHaveProperty('mp3');
    });

    it('keeps no owner email for a job created without one', async () => {
      const id = randomUUID();
      await jobs.create({ id, owner: 'owner-1', filename: 'clip.mp4' });
      expect(await jobs.get(id)).not.toHaveProperty('ownerEmail');
    });

    it('keeps the conversion options asked for, and none when none were', async () => {
      const asked = randomUUID();
      const options = { bitrate: 192 as const, channels: 'mono' as const, start: 1.5, end: 90, track: 2, loudness: -16, cover: false };
      await jobs.create({ id: asked, owner: 'owner-1', filename: 'clip.mp4', options });
      expect((await jobs.get(asked))?.options).toEqual(options);
      const plain = randomUUID();
      await jobs.create({ id: plain, owner: 'owner-1', filename: 'clip.mp4' });
      expect(await jobs.get(plain)).not.toHaveProperty('options');
    });

    it('counts an owner\'s uploads since a time, those in flight, and the oldest', async () => {
      const owner = `counted-${randomUUID()}`;
      const create = async () => (await jobs.create({ id: randomUUID(), owner, ownerEmail: 'c@example.com', filename: 'a.mp4' })).id;
      expect(await jobs.countUploads(owner, new Date(0))).toEqual({ total: 0, inFlight: 0, oldest: null });

      const early = await create();
      await tick();
      const since = new Date();
      await tick();
      const [converting, converted, failed, waiting] = [await create(), await create(), await create(), await create()];
      await jobs.create({ id: randomUUID(), owner: `other-${randomUUID()}`, filename: 'b.mp4' });
      await jobs.startConversion(converting, 60_000);
      for (const id of [converted, failed]) await jobs.startConversion(id, 60_000);
      await jobs.finishConversion(converted, { id: converted, durationSeconds: 1, sizeBytes: 1 });
      await jobs.failConversion(failed, 'x');

      const counts = await jobs.countUploads(owner, since);
      expect(counts).toMatchObject({ total: 4, inFlight: 2 });
      expect(counts.oldest!.getTime()).toBe((await jobs.get(converting))!.createdAt.getTime());
      expect(counts.oldest!.getTime()).toBeGreaterThanOrEqual(since.getTime());
      expect(await jobs.countUploads(owner, new Date(0))).toMatchObject({ total: 5, inFlight: 3, oldest: (await jobs.get(early))!.createdAt });
      expect((await jobs.get(waiting))!.status).toBe('uploaded');
    });

    it('answers null for an unknown job', async () => {
      expect(await jobs.get(randomUUID())).toBeNull();
    });

    it('lets exactly one of several concurrent deliveries start the conversion', async () => {
      const id = await newJob();
      const started = await Promise.all(Array.from({ length: 8 }, () => jobs.startConversion(id, 60_000)));
      expect(started.filter((token) => token !== null)).toHaveLength(1);
      expect((await jobs.get(id))!.status).toBe('converting');
    });

    it('lets a delivery take over a conversion whose lease ran out', async () => {
      const id = await newJob();
      expect(await jobs.startConversion(id, -1)).toEqual(expect.any(String));
      expect(await jobs.startConversion(id, 60_000)).toEqual(expect.any(String));
      expect(await jobs.startConversion(id, 60_000)).toBeNull();
    });

    it('keeps a live conversion\'s lease from running out', async () => {
      const id = await newJob();
      expect(await jobs.startConversion(id, -1)).toEqual(expect.any(String));
      await jobs.extendConversion(id, 60_000);
      expect(await jobs.startConversion(id, 60_000)).toBeNull();
    });

    it('records the MP3 of a finished conversion', async () => {
      const id = await newJob();
      await jobs.startConversion(id, 60_000);
      await jobs.finishConversion(id, mp3(id));
      expect(await jobs.get(id)).toMatchObject({ status: 'converted', mp3: mp3(id) });
      expect((await jobs.get(id))?.mp3).not.toHaveProperty('audioTrack');
      expect(await jobs.startConversion(id, 60_000)).toBeNull();
    });

    it('records which audio track the MP3 was made from', async () => {
      const id = await newJob();
      await jobs.startConversion(id, 60_000);
      await jobs.finishConversion(id, { ...mp3(id), audioTrack: 3 });
      expect((await jobs.get(id))?.mp3).toEqual({ ...mp3(id), audioTrack: 3 });
    });

    it('records why a conversion failed', async () => {
      const id = await newJob();
      await jobs.startConversion(id, 60_000);
      await jobs.failConversion(id, 'The video has no audio track.');
      expect(await jobs.get(id)).toMatchObject({ status: 'failed', failure: 'The video has no audio track.' });
      expect(await jobs.startConversion(id, 60_000)).toBeNull();
    });

    it('changes nothing when finishing a job that is not converting', async () => {
      const id = await newJob();
      await jobs.finishConversion(id, mp3(id));
      await jobs.failConversion(id, 'x');
      expect((await jobs.get(id))!.status).toBe('uploaded');
    });

    it('releases a conversion after a transient error so the retry can start at once', async () => {
      const id = await newJob();
      await jobs.startConversion(id, 60_000);
      await jobs.releaseConversion(id);
      expect((await jobs.get(id))!.status).toBe('uploaded');
      expect(await jobs.startConversion(id, 60_000)).toEqual(expect.any(String));
    });

    const history = async (id: string) => (await jobs.get(id))!.transitions.map((t) => `${t.status}@${t.revision}`);

    it('numbers every change a watcher sees, and keeps each status the job entered', async () => {
      const id = await newJob();
      expect(await jobs.get(id)).toMatchObject({ revision: 1, transitions: [{ status: 'uploaded', revision: 1, at: expect.any(Date) }] });
      expect(await jobs.get(id)).not.toHaveProperty('progress');

      const conversion = (await jobs.startConversion(id, 60_000))!;
      await jobs.extendConversion(id, 60_000); // a lease is no change anyone sees
      await jobs.claimNotification(id, 60_000); // nor is the email
      expect(await jobs.get(id)).toMatchObject({ status: 'converting', revision: 2 });
      await jobs.reportProgress(id, conversion, 10);
      expect(await jobs.get(id)).toMatchObject({ revision: 3, progress: { percent: 10, revision: 3 } });
      await jobs.reportProgress(id, conversion, 55);
      expect(await jobs.get(id)).toMatchObject({ revision: 4, progress: { percent: 55, revision: 4 } });

      await jobs.finishConversion(id, mp3(id));
      const done = (await jobs.get(id))!;
      expect(done).toMatchObject({ status: 'converted', revision: 5 });
      expect(done).not.toHaveProperty('progress');
      expect(await history(id)).toEqual(['uploaded@1', 'converting@2', 'converted@5']);
      expect(done.transitions[2]!.at.getTime()).toBe(done.updatedAt.getTime());
    });

    it('keeps progress only rising, only from the conversion in hand, and only while converting', async () => {
      const id = await newJob();
      await jobs.reportProgress(id, 'no conversion', 5);
      const conversion = (await jobs.startConversion(id, 60_000))!;
      await jobs.reportProgress(id, conversion, 40);
      await jobs.reportProgress(id, conversion, 40);
      await jobs.reportProgress(id, conversion, 30);
      await jobs.reportProgress(id, 'another conversion', 90);
      expect(await jobs.get(id)).toMatchObject({ revision: 3, progress: { percent: 40, revision: 3 } });

      await jobs.failConversion(id, 'x');
      await jobs.reportProgress(id, conversion, 50);
      expect(await jobs.get(id)).toMatchObject({ status: 'failed', revision: 4 });
      expect(await jobs.get(id)).not.toHaveProperty('progress');
      expect(await history(id)).toEqual(['uploaded@1', 'converting@2', 'failed@4']);
    });

    it('records a retry as converting → uploaded → converting, its progress starting over', async () => {
      const id = await newJob();
      const first = (await jobs.startConversion(id, 60_000))!;
      await jobs.reportProgress(id, first, 70);
      await jobs.releaseConversion(id);
      expect(await jobs.get(id)).not.toHaveProperty('progress');
      const second = (await jobs.startConversion(id, 60_000))!;
      expect(second).not.toBe(first);
      await jobs.reportProgress(id, first, 80);
      expect(await jobs.get(id)).not.toHaveProperty('progress');
      await jobs.reportProgress(id, second, 20);
      expect(await jobs.get(id)).toMatchObject({ revision: 6, progress: { percent: 20, revision: 6 } });
      expect(await history(id)).toEqual(['uploaded@1', 'converting@2', 'uploaded@4', 'converting@5']);
    });

    it('gives a conversion that takes over a lapsed one its own progress; the lapsed one reports no more', async () => {
      const id = await newJob();
      const lapsed = (await jobs.startConversion(id, -1))!;
      await jobs.reportProgress(id, lapsed, 90);
      const taker = (await jobs.startConversion(id, 60_000))!;
      expect(await jobs.get(id)).not.toHaveProperty('progress');
      await jobs.reportProgress(id, lapsed, 95);
      await jobs.reportProgress(id, taker, 5);
      expect(await jobs.get(id)).toMatchObject({ status: 'converting', progress: { percent: 5 } });
      expect(await history(id)).toEqual(['uploaded@1', 'converting@2', 'converting@4']);
    });

    it('lists an owner\'s jobs newest first, a page at a time, after a position', async () => {
      const owner = `listed-${randomUUID()}`;
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        // Some share a millisecond (ordered by id then), some do not.
        if (i % 3 === 0) await tick();
        ids.push((await jobs.create({ id: randomUUID(), owner, filename: `${i}.mp4` })).id);
      }
      await jobs.create({ id: randomUUID(), owner: `other-${randomUUID()}`, filename: 'x.mp4' });
      const all = await Promise.all(ids.map(async (id) => (await jobs.get(id))!));
      const newestFirst = all
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
        .map((j) => j.id);

      const seen: string[] = [];
      let page = await jobs.listByOwner(owner, 3);
      while (page.length > 0) {
        expect(page.length).toBeLessThanOrEqual(3);
        seen.push(...page.map((j) => j.id));
        const last = page.at(-1)!;
        page = await jobs.listByOwner(owner, 3, { createdAt: last.createdAt, id: last.id });
      }
      expect(seen).toEqual(newestFirst);
      expect((await jobs.listByOwner(owner, 100))[0]).toMatchObject({ id: newestFirst[0], owner, revision: 1, transitions: [{ status: 'uploaded' }] });
      expect(await jobs.listByOwner(`nobody-${randomUUID()}`, 10)).toEqual([]);
      expect(await jobs.listByOwner(owner, 10, { createdAt: new Date(0), id: 'a' })).toEqual([]);
    });

    it('gives the right to send the email once', async () => {
      const id = await newJob();
      expect(await jobs.claimNotification(id, 60_000)).toBe('claimed');
      expect(await jobs.claimNotification(id, 60_000)).toBe('busy');
      await jobs.finishNotification(id);
      expect(await jobs.claimNotification(id, 60_000)).toBe('sent');
      expect(await jobs.claimNotification(id, -1)).toBe('sent');
    });

    it('gives exactly one of several concurrent claims', async () => {
      const id = await newJob();
      const claims = await Promise.all(Array.from({ length: 8 }, () => jobs.claimNotification(id, 60_000)));
      expect(claims.filter((c) => c === 'claimed')).toHaveLength(1);
    });

    it('lets a released or stale claim be taken again', async () => {
      const id = await newJob();
      await jobs.claimNotification(id, 60_000);
      await jobs.releaseNotification(id);
      expect(await jobs.claimNotification(id, 60_000)).toBe('claimed');
      expect(await jobs.claimNotification(id, -1)).toBe('claimed');
    });

    it('answers missing for the claim of an unknown job', async () => {
      expect(await jobs.claimNotification(randomUUID(), 60_000)).toBe('missing');
    });

    it('keeps when a converted MP3 expires, lists the due ones, and records that they expired', async () => {
      const [due, later, forever] = [await newJob(), await newJob(), await newJob()];
      const now = new Date();
      for (const id of [due, later, forever]) await jobs.startConversion(id, 60_000);
      await jobs.finishConversion(due, mp3(due), new Date(now.getTime() - 1000));
      await jobs.finishConversion(later, mp3(later), new Date(now.getTime() + 60_000));
      await jobs.finishConversion(forever, mp3(forever));
      expect((await jobs.get(due))!.expiresAt!.getTime()).toBe(now.getTime() - 1000);
      expect(await jobs.get(forever)).not.toHaveProperty('expiresAt');
      expect(await jobs.get(due)).not.toHaveProperty('expired');

      const listed = (await jobs.listExpiring(now, 1000)).map((j) => j.id);
      expect(listed).toContain(due);
      expect(listed).not.toContain(later);
      expect(listed).not.toContain(forever);

      await jobs.markExpired(due);
      await jobs.markExpired(due); // a second sweep changes nothing
      expect(await jobs.get(due)).toMatchObject({ status: 'converted', expired: true, mp3: mp3(due) });
      expect((await jobs.listExpiring(now, 1000)).map((j) => j.id)).not.toContain(due);
    });

    it('lists uploads left waiting since before a time, and no other job', async () => {
      const [waiting, converting] = [await newJob(), await newJob()];
      await jobs.startConversion(converting, 60_000);
      await tick();
      const before = new Date();
      await tick();
      const fresh = await newJob();
      const listed = (await jobs.listAbandoned(before, 1000)).map((j) => j.id);
      expect(listed).toContain(waiting);
      expect(listed).not.toContain(converting);
      expect(listed).not.toContain(fresh);
      expect(await jobs.listAbandoned(before, 1)).toHaveLength(1);
    });

    it('deletes a job', async () => {
      const id = await newJob();
      await jobs.delete(id);
      expect(await jobs.get(id)).toBeNull();
    });
  });
}
