import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { envReader } from '../../shared/config';
import { loadPublicKeys, loadSigningKey } from '../../shared/keys';
import { runFunction } from '../../shared/serve';
import { dataDir, tokenAudience } from '../../shared/settings';
import { createApp } from './app';
import { tokenIssuer } from './tokens';
import { openUsers } from './users/open';

await runFunction('login', async (env, log) => {
  const read = envReader(env);
  const dir = dataDir(read);
  const users = await openUsers(read.url('USERS_DB_URL', pathToFileURL(join(dir, 'users.db')).href));
  const key = await loadSigningKey(read.optional('JWT_PRIVATE_KEY'), dir);
  const ttlSeconds = read.int('JWT_TTL_SECONDS', 3600, { min: 60, max: 7 * 24 * 3600 });
  const publicKeys = read.optional('JWT_PUBLIC_KEYS')
    ? await loadPublicKeys(read.optional('JWT_PUBLIC_KEYS'), dir)
    : { keys: [key.publicJwk] };

  const app = createApp({ users, issueToken: tokenIssuer(key, tokenAudience(read), ttlSeconds), publicKeys, log });
  return { fetch: app.fetch, close: () => users.close() };
});
