import { tokenVerifier } from '../../shared/auth';
import { envReader } from '../../shared/config';
import { loadPublicKeys } from '../../shared/keys';
import { runFunction } from '../../shared/serve';
import { corsOrigins, dataDir, links, mediaUrl, tokenAudience } from '../../shared/settings';
import { openStores } from '../../shared/stores';
import { createApp } from './app';

await runFunction('download', async (env, log) => {
  const read = envReader(env);
  const verify = tokenVerifier(await loadPublicKeys(read.optional('JWT_PUBLIC_KEYS'), dataDir(read)), tokenAudience(read));
  const stores = await openStores(mediaUrl(read));

  // Event streams end as the drain begins (their clients resume with Last-Event-ID elsewhere).
  const draining = new AbortController();
  const events = {
    pollMs: read.int('JOB_EVENTS_POLL_MS', 500, { min: 50, max: 60_000 }),
    heartbeatMs: read.int('JOB_EVENTS_HEARTBEAT_SECONDS', 15, { min: 1, max: 300 }) * 1000,
    closing: draining.signal,
  };

  const app = createApp({ ...stores, verify, links: await links(read), log, events, corsOrigins: corsOrigins(read) });
  return { fetch: app.fetch, close: stores.close, drain: () => draining.abort() };
});
