import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from './log';
import { Problem, notFound } from './problem';

export interface FunctionEnv {
  Variables: {
    log: Logger;
    /** Set by event handlers so the request's log line names the event. */
    eventId?: string;
  };
}

/**
 * The base every function's Hono app starts from: one JSON log line per request,
 * `GET /healthz`, and problem+json for every error, including unmatched routes.
 */
export function functionApp<E extends FunctionEnv = FunctionEnv>(log: Logger): Hono<E> {
  const app = new Hono<E>();

  app.use(async (c, next) => {
    const started = performance.now();
    c.set('log', log);
    await next();
    const fields = {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      ...(c.get('eventId') && { eventId: c.get('eventId') }),
    };
    if (c.res.status >= 500) log.error('request', fields);
    else log.info('request', fields);
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.notFound((c) => notFound(`No route for ${c.req.method} ${c.req.path}.`).toResponse(c.req.path));

  app.onError((err, c) => {
    if (err instanceof HTTPException && !(err instanceof Problem)) {
      // Hono's own middleware (body limit) speaks HTTPException; answer it as a problem too.
      err = new Problem({ status: err.status, title: titles[err.status] ?? 'Error', detail: err.message || undefined });
    }
    if (err instanceof Problem) {
      if (err.status < 500) log.warn('rejected', { path: c.req.path, status: err.status, detail: err.detail });
      else log.error('failed', { path: c.req.path, status: err.status, detail: err.detail });
      return err.toResponse(c.req.path);
    }
    log.error('unhandled error', { path: c.req.path, err });
    return new Problem({ status: 500, title: 'Internal Server Error' }).toResponse(c.req.path);
  });

  return app;
}

const titles: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 413: 'Content Too Large' };
