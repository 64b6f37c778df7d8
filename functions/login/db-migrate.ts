/** `make db-migrate`: creates the users and login_failures tables where USERS_DB_URL points (SQLite creates them on open). */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, envReader } from '../../shared/config';
import { dataDir } from '../../shared/settings';
import { openUsers } from './users/open';

try {
  const read = envReader(process.env);
  const url = read.url('USERS_DB_URL', pathToFileURL(join(dataDir(read), 'users.db')).href);
  const users = await openUsers(url);
  if ('migrate' in users && typeof users.migrate === 'function') await users.migrate();
  process.stdout.write(`users and login_failures tables ready (${url.protocol === 'file:' ? 'SQLite' : 'MySQL'}, ${url.host || url.pathname})\n`);
  await users.close();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`db-migrate: ${err.message}\n`);
  process.exit(1);
}
