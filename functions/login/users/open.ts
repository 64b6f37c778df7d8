import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../../shared/config';
import type { UserStore } from './store';

/** `USERS_DB_URL`: `file:///path/users.db` for SQLite. */
export async function openUsers(url: URL): Promise<UserStore> {
  if (url.protocol === 'file:') {
    const [{ openSqlite }, { SqliteUserStore }] = await Promise.all([import('../../../shared/sqlite'), import('./sqlite')]);
    return new SqliteUserStore(await openSqlite(fileURLToPath(url)));
  }
  throw new ConfigError('USERS_DB_URL', `has an unsupported scheme "${url.protocol}" (use file:///path/users.db)`);
}
