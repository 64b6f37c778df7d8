import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { ConfigError, envReader } from '../../shared/config';
import { loadPublicKeys, loadSigningKey } from '../../shared/keys';
import { runFunction } from '../../shared/serve';
import { corsOrigins, dataDir, tokenAudience } from '../../shared/settings';
import { createApp } from './app';
import { requestAddress, trustProxyModes, type TrustProxy } from './client-address';
import type { ThrottlePolicy } from './throttle';
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

  const firstLockSeconds = read.int('LOGIN_FIRST_LOCK_SECONDS', 1, { min: 1, max: 3600 });
  const maxLockSeconds = read.int('LOGIN_MAX_LOCK_SECONDS', 900, { min: firstLockSeconds, max: 24 * 3600 });
  const throttle: ThrottlePolicy = {
    accountFreeFailures: read.int('LOGIN_ACCOUNT_FREE_FAILURES', 5, { min: 1, max: 1000 }),
    addressFreeFailures: read.int('LOGIN_ADDRESS_FREE_FAILURES', 20, { min: 1, max: 100_000 }),
    firstLockSeconds,
    maxLockSeconds,
    // Not shorter than the longest lock, or a locked key would be forgotten while locked.
    forgetAfterSeconds: read.int('LOGIN_FORGET_FAILURES_SECONDS', 24 * 3600, { min: maxLockSeconds, max: 30 * 24 * 3600 }),
  };
  // libuv runs 4 scrypts at once by default; more only wait in its queue, where none can be refused.
  const maxConcurrentHashes = read.int('LOGIN_MAX_CONCURRENT_HASHES', 4, { min: 1, max: 256 });
  const trustProxy = read.string('TRUST_PROXY', 'none') as TrustProxy;
  if (!trustProxyModes.includes(trustProxy)) throw new ConfigError('TRUST_PROXY', `must be ${trustProxyModes.join(' or ')}, got "${trustProxy}"`);

  const app = createApp({
    users,
    issueToken: tokenIssuer(key, tokenAudience(read), ttlSeconds),
    publicKeys,
    log,
    throttle,
    maxConcurrentHashes,
    clientAddress: requestAddress(trustProxy),
    corsOrigins: corsOrigins(read),
  });
  return { fetch: app.fetch, close: () => users.close() };
});
