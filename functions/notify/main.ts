import { join } from 'node:path';
import { envReader } from '../../shared/config';
import { runFunction } from '../../shared/serve';
import { dataDir, keepSourceVideos, links, mediaUrl } from '../../shared/settings';
import { openStores } from '../../shared/stores';
import { createApp } from './app';
import { outboxMailer } from './mail/outbox';

await runFunction('notify', async (env, log) => {
  const read = envReader(env);
  const apiKey = read.optional('SENDGRID_API_KEY');
  // With a SendGrid key mail goes to SendGrid (or to MAIL_URL, a server speaking its API); without one, to the outbox.
  // The SendGrid client (and axios under it) is loaded only when used: it is most of this bundle.
  const mailer = apiKey
    ? await import('./mail/sendgrid').then(({ SENDGRID_API, sendgridMailer }) =>
        sendgridMailer({ apiKey, baseUrl: read.url('MAIL_URL', SENDGRID_API, ['http:', 'https:']).href.replace(/\/$/, '') }),
      )
    : outboxMailer(join(dataDir(read), 'outbox'), log);
  const from = read.string('MAIL_FROM', 'earshot <no-reply@earshot.localhost>');
  const downloadUrl = read.url('DOWNLOAD_URL', undefined, ['http:', 'https:']);
  const stores = await openStores(mediaUrl(read));

  const app = createApp({ jobs: stores.jobs, mailer, log, claimStaleMs: 5 * 60_000, from, downloadUrl, links: await links(read), keepSourceVideos: keepSourceVideos(read) });
  return { fetch: app.fetch, close: stores.close };
});
