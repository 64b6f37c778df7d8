/** The MongoDB-wire server of `make services` (FerretDB on PostgreSQL), for tests. */
import { MongoClient } from 'mongodb';

const base = process.env.MONGODB_TEST_URL ?? 'mongodb://127.0.0.1:27018/';

/** A database of its own for each test file: suites in parallel never see each other's data. */
export const mongoTestUrl = (suite: string) => new URL(`earshot_test_${suite}_${process.pid}`, base).href;

export async function mongoReachable(): Promise<boolean> {
  const client = new MongoClient(base, { serverSelectionTimeoutMS: 20_000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}

export async function dropDatabase(url: string): Promise<void> {
  const client = new MongoClient(url);
  try {
    await client.connect();
    await client.db().dropDatabase();
  } finally {
    await client.close();
  }
}
