import { randomUUID } from 'node:crypto';
import { bodyLimit } from 'hono/body-limit';
import type { MiddlewareHandler } from 'hono';
import { HTTP } from 'cloudevents';
import { functionApp, type FunctionEnv } from '../../shared/app';
import { bearerAuth, type AuthEnv, type VerifyToken } from '../../shared/auth';
import type { Logger } from '../../shared/log';
import { Problem, notFound } from '../../shared/problem';
import type { DeadLetter, DeadLetterStore } from './letters';

export interface DeadLetterDeps {
  letters: DeadLetterStore;
  verify: VerifyToken;
  /** Sends a stored delivery back into the broker; absent until the broker's address is known. */
  replay?: (headers: Record<string, string>, body: Uint8Array<ArrayBuffer>) => Promise<void>;
  log: Logger;
}

type Env = FunctionEnv & AuthEnv;

const errorExtensions = ['knativeerrordest', 'knativeerrorcode', 'knativeerrordata'];

export function createApp({ letters, verify, replay, log }: DeadLetterDeps) {
  const app = functionApp<Env>(log);

  /** The broker's dead-letter sink: keeps whatever arrives; only a store failure is an error. */
  app.post('/', bodyLimit({ maxSize: 1024 * 1024 }), async (c) => {
    const headers = Object.fromEntries([...c.req.raw.headers].filter(([name]) => name === 'content-type' || name.startsWith('ce-')));
    const body = Buffer.from(await c.req.arrayBuffer());
    const letter: DeadLetter = { id: randomUUID(), receivedAt: new Date().toISOString(), headers, body: body.toString('base64'), summary: summarize(headers, body) };
    await letters.add(letter);
    if (letter.summary.eventId) c.set('eventId', letter.summary.eventId);
    log.warn('dead letter', { deadLetterId: letter.id, ...letter.summary });
    return c.body(null, 202);
  });

  app.use('/dead-letters', bearerAuth(verify), adminOnly);
  app.use('/dead-letters/*', bearerAuth(verify), adminOnly);

  app.get('/dead-letters', async (c) => {
    const limit = Math.min(Number(c.req.query('limit')) || 100, 1000);
    return c.json((await letters.list(limit)).map(({ id, receivedAt, summary }) => ({ id, receivedAt, ...summary })));
  });

  app.get('/dead-letters/:id', async (c) => {
    const letter = await letters.get(c.req.param('id'));
    if (!letter) throw notFound('No such dead letter.');
    return c.json(letter);
  });

  /** Sends the event, without the error extensions, back into the broker, then forgets it. */
  app.post('/dead-letters/:id/replay', async (c) => {
    const letter = await letters.get(c.req.param('id'));
    if (!letter) throw notFound('No such dead letter.');
    if (!replay) {
      throw new Problem({ status: 503, title: 'Service Unavailable', detail: 'No broker to replay into yet (K_SINK is not set); the dead letter is kept.', headers: { 'retry-after': '30' } });
    }
    const { headers, body } = withoutErrors(letter);
    try {
      await replay(headers, body);
    } catch (err) {
      log.error('replay failed', { deadLetterId: letter.id, err });
      throw new Problem({ status: 503, title: 'Service Unavailable', detail: 'The broker did not take the event; it is kept.', headers: { 'retry-after': '30' } });
    }
    await letters.remove(letter.id);
    log.info('dead letter replayed', { deadLetterId: letter.id, eventId: letter.summary.eventId });
    return c.body(null, 202);
  });

  app.delete('/dead-letters/:id', async (c) => {
    if (!(await letters.get(c.req.param('id')))) throw notFound('No such dead letter.');
    await letters.remove(c.req.param('id'));
    return c.body(null, 204);
  });

  return app;
}

const adminOnly: MiddlewareHandler<Env> = async (c, next) => {
  if (c.get('user').role !== 'admin') throw new Problem({ status: 403, title: 'Forbidden', detail: 'Dead letters are for admins.' });
  await next();
};

function summarize(headers: Record<string, string>, body: Buffer): DeadLetter['summary'] {
  try {
    const event = HTTP.toEvent({ headers, body: body.toString('utf8') });
    if (Array.isArray(event)) return {};
    const ext = event as unknown as Record<string, unknown>;
    return {
      eventId: event.id,
      type: event.type,
      source: event.source,
      subject: event.subject,
      errorDest: ext.knativeerrordest === undefined ? undefined : String(ext.knativeerrordest),
      errorCode: ext.knativeerrorcode === undefined ? undefined : String(ext.knativeerrorcode),
    };
  } catch {
    return {}; // not a CloudEvent: kept all the same, for a human to look at
  }
}

function withoutErrors(letter: DeadLetter): { headers: Record<string, string>; body: Uint8Array<ArrayBuffer> } {
  const body = new Uint8Array(Buffer.from(letter.body, 'base64'));
  const headers = Object.fromEntries(Object.entries(letter.headers).filter(([name]) => !errorExtensions.includes(name.slice(3))));
  if (!headers['content-type']?.startsWith('application/cloudevents+json')) return { headers, body };
  const structured = JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown>;
  for (const name of errorExtensions) delete structured[name];
  return { headers, body: new TextEncoder().encode(JSON.stringify(structured)) };
}
