import { tokenVerifier } from '../../shared/auth';
import { brokerSender } from '../../shared/broker';
import { envReader } from '../../shared/config';
import { loadPublicKeys } from '../../shared/keys';
import { runFunction } from '../../shared/serve';
import { dataDir, mediaUrl, tokenAudience } from '../../shared/settings';
import { createApp } from './app';
import { openDeadLetters } from './letters';

await runFunction('deadletter', async (env, log) => {
  const read = envReader(env);
  const replay = brokerSender(read.url('K_SINK', undefined, ['http:', 'https:']));
  const verify = tokenVerifier(await loadPublicKeys(read.optional('JWT_PUBLIC_KEYS'), dataDir(read)), tokenAudience(read));

  const app = createApp({ letters: openDeadLetters(mediaUrl(read)), verify, replay, log });
  return { fetch: app.fetch };
});
