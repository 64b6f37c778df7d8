import { bodyLimit } from 'hono/body-limit';
import { functionApp } from '../../shared/app';
import { EventTypes, toHttp } from '../../shared/events';
import { Problem } from '../../shared/problem';
import { receiveEvent } from '../../shared/receive';
import { convertVideo, type ConvertDeps } from './convert';

export function createApp(deps: ConvertDeps) {
  const app = functionApp(deps.log);

  /** The broker delivers `video.uploaded` here; the reply is the next event. */
  app.post('/', bodyLimit({ maxSize: 64 * 1024 }), async (c) => {
    const event = await receiveEvent(c, [EventTypes.videoUploaded]);
    const outcome = await convertVideo(deps, event.data);
    deps.log.info('event', { eventId: event.id, type: event.type, outcome: outcome.kind === 'reply' ? outcome.event.type : outcome.kind });
    switch (outcome.kind) {
      case 'reply': {
        const { headers, body } = toHttp(outcome.event);
        return new Response(body, { status: 200, headers });
      }
      case 'busy':
        throw new Problem({ status: 409, title: 'Conflict', detail: 'This video is being converted by another delivery; retry later.' });
      case 'gone':
        return c.body(null, 204);
    }
  });

  return app;
}
