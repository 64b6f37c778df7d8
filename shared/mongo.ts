import type { Db, MongoClient } from 'mongodb';

const clients = new Map<string, Promise<{ client: MongoClient; db: Db }>>();

/**
 * One MongoClient per process and URL, created on first use and reused by every request
 * (the driver pools connections). The driver is imported here, so functions that never touch
 * MongoDB never load it. The database is the URL's path (`mongodb://host/earshot`), or `earshot`.
 */
export function mongoDb(url: string): Promise<{ client: MongoClient; db: Db }> {
  let entry = clients.get(url);
  if (!entry) {
    entry = (async () => {
      const { MongoClient } = await import('mongodb');
      const client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000, appName: 'earshot' });
      await client.connect();
      const name = new URL(url).pathname.replace(/^\//, '') || 'earshot';
      return { client, db: client.db(name) };
    })();
    entry.catch(() => clients.delete(url)); // the next request tries again
    clients.set(url, entry);
  }
  return entry;
}

export async function closeMongo(url: string): Promise<void> {
  const entry = clients.get(url);
  clients.delete(url);
  if (entry) await (await entry).client.close();
}
