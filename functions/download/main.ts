import { tokenVerifier } from '../../shared/auth';
import { envReader } from '../../shared/config';
import { loadPublicKeys } from '../../shared/keys';
import { runFunction } from '../../shared/serve';
import { dataDir, mediaUrl, tokenAudience } from '../../shared/settings';
import { openStores } from '../../shared/stores';
import { createApp } from './app';

await runFunction('download', async (env, log) => {
  const read = envReader(env);
  const verify = tokenVerifier(await loadPublicKeys(read.optional('JWT_PUBLIC_KEYS'), dataDir(read)), tokenAudience(read));
  const stores = await openStores(mediaUrl(read));

  const app = createApp({ ...stores, verify, log });
  return { fetch: app.fetch, close: stores.close };
});
