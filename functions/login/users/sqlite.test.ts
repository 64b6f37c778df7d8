import { join } from 'node:path';
import { openSqlite } from '../../../shared/sqlite';
import { tempDir } from '../../../test/support';
import { userStoreContract } from './contract';
import { SqliteUserStore } from './sqlite';

userStoreContract('SQLite', async () => new SqliteUserStore(await openSqlite(join(await tempDir(), 'users.db'))));
