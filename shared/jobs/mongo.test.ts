import { afterAll } from 'vitest';
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
  jobStoreContract('a MongoDB collection', async () => new MongoJobStore(async () => (await mongoDb(url)).db));
});
