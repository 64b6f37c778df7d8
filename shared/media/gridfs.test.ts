import { afterAll } from 'vitest';
import { dropDatabase, mongoReachable, mongoTestUrl } from '../../test/mongo';
import { describeWithService } from '../../test/services';
import { closeMongo, mongoDb } from '../mongo';
import { mediaStoreContract } from './contract';
import { GridFSMediaStore } from './gridfs';

const url = mongoTestUrl('media');

describeWithService('the MongoDB-wire server', await mongoReachable(), 'media in GridFS', () => {
  afterAll(async () => {
    await closeMongo(url);
    await dropDatabase(url);
  });
  mediaStoreContract('GridFS on a MongoDB-wire server', async () => new GridFSMediaStore(async () => (await mongoDb(url)).db));
});
