import { afterAll, expect, it } from 'vitest';
import { dropDatabase, mongoReachable, mongoTestUrl } from '../../test/mongo';
import { describeWithService } from '../../test/services';
import { closeMongo, mongoDb } from '../mongo';
import { jobStoreContract } from './contract';
import { MongoJobStore } from './mongo';

const url = mongoTestUrl('jobs');

describeWithService('the MongoDB-wire server', await mongoReachable(), 'jobs in MongoDB', () => {
  afterAll(async () => {
    await closeMongo(url);
    await dropDatabase(url);
  });
  const connect = async () => (await mongoDb(url)).db;
  jobStoreContract('a MongoDB collection', async () => new MongoJobStore(connect));

  it('serves every process that opens the database, not only the first (each makes its indexes)', async () => {
    for (const store of [new MongoJobStore(connect), new MongoJobStore(connect), new MongoJobStore(connect)]) {
      await store.create({ id: `process-${Math.random()}`, owner: 'indexes', filename: 'a.mp4' });
      expect((await store.listByOwner('indexes', 10)).length).toBeGreaterThan(0);
      expect((await store.countUploads('indexes', new Date(0))).total).toBeGreaterThan(0);
    }
  });

  it('reads a job written before owner emails were kept as one without an email', async () => {
    const now = new Date();
    await (await connect()).collection('jobs').insertOne({ _id: 'written-before' as never, owner: 'u1', filename: 'a.mp4', status: 'uploaded', createdAt: now, updatedAt: now, mp3: null, failure: null });
    const job = await new MongoJobStore(connect).get('written-before');
    expect(job).toMatchObject({ id: 'written-before', owner: 'u1', filename: 'a.mp4', status: 'uploaded' });
    expect(job).not.toHaveProperty('ownerEmail');
    // Its history starts at what it is: its status, as revision 1; it changes as any other.
    expect(job).toMatchObject({ revision: 1, transitions: [{ status: 'uploaded', revision: 1 }] });
    const store = new MongoJobStore(connect);
    const conversion = (await store.startConversion('written-before', 60_000))!;
    await store.reportProgress('written-before', conversion, 12);
    expect(await store.get('written-before')).toMatchObject({ revision: 3, progress: { percent: 12, revision: 3 } });
    expect((await store.get('written-before'))!.transitions.map((t) => `${t.status}@${t.revision}`)).toEqual(['uploaded@1', 'converting@2']);
  });
});
