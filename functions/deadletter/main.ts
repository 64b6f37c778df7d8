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
  // Optional: on Knative the Broker's dead-letter sink must exist before the Broker, so this
  // Service starts before the SinkBinding that gives it K_SINK (the binding adds it later).
  const replay = read.optional('K_SINK') ? brokerSender(read.url('K_SINK', undefined, ['http:', 'https:'])) : undefined;
  if (!replay) log.warn('K_SINK is not set: dead letters are kept, but replays answer 503 until it is');
  const verify = tokenVerifier(await loadPublicKeys(read.optional('JWT_PUBLIC_KEYS'), dataDir(read)), tokenAudience(read));

  const app = createApp({ letters: openDeadLetters(mediaUrl(read)), verify, replay, log });
  return { fetch: app.fetch };
});
