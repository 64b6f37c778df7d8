import { tokenVerifier } from '../../shared/auth';
import { envReader } from '../../shared/config';
import { loadPublicKeys } from '../../shared/keys';
import { runFunction } from '../../shared/serve';
import { corsOrigins, dataDir, mediaUrl, tokenAudience } from '../../shared/settings';
import { openStores } from '../../shared/stores';
import { createApp } from './app';
import { defaultQuotaBytes } from './quota';
import { brokerEmitter } from '../../shared/broker';

await runFunction('upload', async (env, log) => {
  const read = envReader(env);
  const sink = read.url('K_SINK', undefined, ['http:', 'https:']);
  const maxUploadBytes = read.int('MAX_UPLOAD_BYTES', 1024 ** 3, { min: 1 });
  const limits = {
    inFlight: read.int('MAX_UPLOADS_IN_FLIGHT', 3, { min: 1, max: 1000 }),
    perDay: read.int('MAX_UPLOADS_PER_DAY', 50, { min: 1, max: 100_000 }),
  };
  const quotaBytes = read.int('MAX_STORED_BYTES_PER_USER', defaultQuotaBytes, { min: 1 });
  const downloadUrl = read.optional('DOWNLOAD_URL') ? read.url('DOWNLOAD_URL') : undefined;
  const verify = tokenVerifier(await loadPublicKeys(read.optional('JWT_PUBLIC_KEYS'), dataDir(read)), tokenAudience(read));
  const stores = await openStores(mediaUrl(read));

  const app = createApp({ ...stores, verify, emit: brokerEmitter(sink), maxUploadBytes, limits, quotaBytes, downloadUrl, log, corsOrigins: corsOrigins(read) });
  return { fetch: app.fetch, close: stores.close };
});
