import { envReader } from '../../shared/config';
import { runFunction } from '../../shared/serve';
import { keepSourceVideos, mediaUrl } from '../../shared/settings';
import { openStores } from '../../shared/stores';
import { createApp } from './app';

await runFunction('sweeper', async (env, log) => {
  const read = envReader(env);
  const stores = await openStores(mediaUrl(read));
  // A day by default: far past the broker's retries (minutes) and the longest upload.
  const abandonedAfterMs = Math.round(read.number('ABANDONED_UPLOAD_HOURS', 24, { min: 0, max: 24 * 366 }) * 3600 * 1000);
  const app = createApp({ ...stores, log, keepSourceVideos: keepSourceVideos(read), abandonedAfterMs });
  return { fetch: app.fetch, close: stores.close };
});
