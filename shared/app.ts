import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { requestId } from 'hono/request-id';
import { corsFor } from './cors';
import type { Logger } from './log';
import { Problem, notFound } from './problem';

export interface FunctionEnv {
  Variables: {
    log: Logger;
    /** The client's `X-Request-Id` when it is a safe token, else a new UUID; in every log line of the request. */
    requestId: string;
    /** Set by event handlers so the request's log line names the event. */
    eventId?: string;
  };
}

/**
 * The base every function's Hono app starts from: one JSON log line per request (with its
 * request id, also answered as `X-Request-Id`), `GET /healthz`, `X-Content-Type-Options:
 * nosniff` on every answer, 405 with `Allow` for a known path asked with another method, and
 * problem+json for every error, including unmatched routes. An unexpected error costs only its
 * own request: 500, logged with the request id, which the answer also carries. `corsOrigins`:
 * the web page's origins, for a function the page calls (before the 405 check, which would
 * refuse a preflight).
 */
export function functionApp<E extends FunctionEnv = FunctionEnv>(log: Logger, { corsOrigins = [] }: { corsOrigins?: readonly string[] } = {}): Hono<E> {
  const app = new Hono<E>();

  app.use(requestId());
  app.use(async (c, next) => {
    const started = performance.now();
    const requestLog = log.child({ requestId: c.get('requestId') });
    c.set('log', requestLog);
    await next();
    // After the handler, so that it holds for every answer: handlers build raw Responses too.
    answerHeaders(c, { 'x-request-id': c.get('requestId'), 'x-content-type-options': 'nosniff' });
    const fields = {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      ...(c.get('eventId') && { eventId: c.get('eventId') }),
    };
    if (c.res.status >= 500 && c.res.status !== 503) requestLog.error('request', fields);
    else requestLog.info('request', fields);
  });
  if (corsOrigins.length > 0) app.use(corsFor(corsOrigins));
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, allowed) =>
        new Problem({
          status: 405,
          title: 'Method Not Allowed',
          detail: `${c.req.path} answers ${allowed.join(', ')}.`,
          headers: { allow: allowed.join(', ') },
        }).toResponse(c.req.path),
    }),
  );

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.notFound((c) => notFound(`No route for ${c.req.method} ${c.req.path}.`).toResponse(c.req.path));

  app.onError((err, c) => {
    const requestLog: Logger = (c.get('log') as Logger | undefined) ?? log;
    if (err instanceof HTTPException && !(err instanceof Problem)) {
      // Hono's own middleware (body limit) speaks HTTPException; answer it as a problem too.
      err = new Problem({ status: err.status, title: titles[err.status] ?? 'Error', detail: err.message || undefined });
    }
    if (err instanceof Problem) {
      // 503 is shedding load or waiting out a dependency, said where it happens: a flood of them
      // must not flood the error log too.
      if (err.status < 500 || err.status === 503) requestLog.warn('rejected', { path: c.req.path, status: err.status, detail: err.detail });
      else requestLog.error('failed', { path: c.req.path, status: err.status, detail: err.detail });
      return err.toResponse(c.req.path);
    }
    requestLog.error('unhandled error', { path: c.req.path, err });
    return new Problem({ status: 500, title: 'Internal Server Error', extensions: { requestId: c.get('requestId') } }).toResponse(c.req.path);
  });

  return app;
}

/**
 * Sets headers on the answer a handler already made. Set on its own Headers, not with
 * `c.header()`: once the answer is made, `c.header()` builds a new Response around the old one's
 * body for every header, which turns a string body into a stream that is then pumped to the
 * socket (measured: about 70 µs of a 240 µs GET /jobs/:id). Only a Response whose headers are
 * immutable (one from fetch(), Response.redirect()) is copied, as `c.header()` would.
 */
function answerHeaders(c: Context, headers: Record<string, string>): void {
  try {
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    for (const [name, value] of Object.entries(headers)) c.header(name, value);
  }
}

const titles: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 413: 'Content Too Large' };
