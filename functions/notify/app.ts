import { bodyLimit } from 'hono/body-limit';
import { functionApp } from '../../shared/app';
import { EventTypes } from '../../shared/events';
import { Problem } from '../../shared/problem';
import { receiveEvent } from '../../shared/receive';
import { MailUnavailable } from './mail/mailer';
import { settledJobFor } from './match';
import { composeEmail, type EmailSettings } from './message';
import { notifyOwner, type NotifyDeps } from './notify';

export interface NotifyAppDeps extends NotifyDeps, EmailSettings {}

export function createApp(deps: NotifyAppDeps) {
  const app = functionApp(deps.log);

  /**
   * The broker delivers `audio.converted` and `conversion.failed` here. Only the event's ids are
   * used; recipient, filename and reason are the job's. An event the job does not bear out is
   * answered 200, so the broker does not retry it.
   */
  app.post('/', bodyLimit({ maxSize: 64 * 1024 }), async (c) => {
    const event = await receiveEvent(c, [EventTypes.audioConverted, EventTypes.conversionFailed]);
    const about = { eventId: event.id, type: event.type, videoId: event.data.videoId };
    const found = settledJobFor(event, await deps.jobs.get(event.data.videoId));
    if ('mismatch' in found) {
      deps.log.warn('event does not match the job', { ...about, why: found.mismatch });
      return c.body(null, 200);
    }
    const { job } = found;
    if (!job.ownerEmail) {
      deps.log.warn('job has no owner email; nobody to tell', about);
      return c.body(null, 200);
    }
    let outcome;
    try {
      outcome = await notifyOwner(deps, await composeEmail(job, job.ownerEmail, deps));
    } catch (err) {
      if (!(err instanceof MailUnavailable)) throw err;
      deps.log.warn('mail unavailable; the broker will retry', { eventId: event.id, err });
      throw new Problem({ status: 503, title: 'Service Unavailable', detail: 'The mail provider is unavailable; retry later.' });
    }
    deps.log.info('event', { eventId: event.id, type: event.type, outcome });
    if (outcome === 'busy') {
      throw new Problem({ status: 409, title: 'Conflict', detail: 'Another delivery is sending this email; retry later.' });
    }
    return c.body(null, 200);
  });

  return app;
}
