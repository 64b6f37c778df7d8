import { join } from 'node:path';
import { tempDir } from '../../test/support';
import { openSqlite } from '../sqlite';
import { jobStoreContract } from './contract';
import { SqliteJobStore } from './sqlite';

jobStoreContract('SQLite', async () => {
  const file = join(await tempDir(), 'jobs.db');
  return new SqliteJobStore(() => openSqlite(file));
});
