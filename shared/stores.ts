import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './config';
import { openSqlite, requireSqlite } from './sqlite';
import type { JobStore } from './jobs/store';
import type { MediaStore } from './media/store';

export interface Stores {
  media: MediaStore;
  jobs: JobStore;
  close(): Promise<void>;
}

/**
 * Media and jobs live together, chosen by `MEDIA_URL`: `file:///dir` keeps files and a
 * SQLite job table under one folder; `mongodb://…/database` keeps media in GridFS and jobs in
 * a collection. Adapters are imported on use, so a function loads only
 * the driver it needs.
 */
export async function openStores(url: URL): Promise<Stores> {
  if (url.protocol === 'file:') {
    requireSqlite('MEDIA_URL', 'mongodb://host/database');
    const dir = fileURLToPath(url);
    const [{ FileMediaStore }, { SqliteJobStore }] = await Promise.all([import('./media/files'), import('./jobs/sqlite')]);
    const media = new FileMediaStore(join(dir, 'media'));
    const jobs = new SqliteJobStore(() => openSqlite(join(dir, 'jobs.db')));
    return { media, jobs, close: async () => void (await Promise.all([media.close(), jobs.close()])) };
  }
  if (url.protocol === 'mongodb:' || url.protocol === 'mongodb+srv:') {
    const [{ mongoDb, closeMongo }, { GridFSMediaStore }, { MongoJobStore }] = await Promise.all([
      import('./mongo'),
      import('./media/gridfs'),
      import('./jobs/mongo'),
    ]);
    const connect = async () => (await mongoDb(url.href)).db;
    return { media: new GridFSMediaStore(connect), jobs: new MongoJobStore(connect), close: () => closeMongo(url.href) };
  }
  throw new ConfigError('MEDIA_URL', `has an unsupported scheme "${url.protocol}" (use file:///path or mongodb://host/database)`);
}
