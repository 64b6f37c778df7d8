import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../../shared/config';
import { openSqlite, requireSqlite } from '../../../shared/sqlite';
import type { UserStore } from './store';

/**
 * `USERS_DB_URL`: `file:///path/users.db` for SQLite; `https://user:password@host` for
 * PlanetScale, or `http://user:password@host:port` for MySQL behind earshot's mysql-proxy.
 */
export async function openUsers(url: URL): Promise<UserStore> {
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    if (!url.username) throw new ConfigError('USERS_DB_URL', 'must carry the database user and password: https://user:password@host');
    const { MysqlUserStore } = await import('./mysql');
    return new MysqlUserStore(url.href);
  }
  if (url.protocol === 'file:') {
    requireSqlite('USERS_DB_URL', 'https://user:password@host (PlanetScale, or MySQL behind mysql-proxy)');
    const { SqliteUserStore } = await import('./sqlite');
    return new SqliteUserStore(await openSqlite(fileURLToPath(url)));
  }
  throw new ConfigError('USERS_DB_URL', `has an unsupported scheme "${url.protocol}" (use file:///path/users.db, or https://user:password@host for MySQL)`);
}
