/**
 * The HTTP API `@planetscale/database` speaks, in front of any MySQL: `Execute` and
 * `CreateSession` under `/psdb.v1alpha1.Database/`, HTTP Basic carrying the MySQL user and
 * password. Errors take the driver's shape, `{error: {code, message}}`; queries and
 * credentials never reach the log.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from '../shared/log';
import { SqlError, type Credentials, type SessionManager } from './sessions';

const statusOf: Record<string, number> = { UNAUTHENTICATED: 401, PERMISSION_DENIED: 403, UNAVAILABLE: 503 };

export function createApp(sessions: SessionManager, log: Logger) {
  const app = new Hono();
  const fail = (code: string, message: string, status: number) => Response.json({ error: { code, message } }, { status });

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    log.info('request', { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) });
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.post('/psdb.v1alpha1.Database/CreateSession', async (c) => {
    const creds = credentials(c.req.header('authorization'));
    if (!creds) return fail('UNAUTHENTICATED', 'HTTP Basic credentials (MySQL user and password) are required', 401);
    try {
      return c.json({ session: await sessions.open(creds) });
    } catch (err) {
      if (!(err instanceof SqlError)) throw err;
      return fail(err.code, err.message, statusOf[err.code] ?? 400);
    }
  });

  app.post('/psdb.v1alpha1.Database/Execute', bodyLimit({ maxSize: 16 * 1024 * 1024 }), async (c) => {
    const started = performance.now();
    const creds = credentials(c.req.header('authorization'));
    if (!creds) return fail('UNAUTHENTICATED', 'HTTP Basic credentials (MySQL user and password) are required', 401);
    let body: { query?: unknown; session?: unknown };
    try {
      body = await c.req.json();
    } catch {
      return fail('INVALID_ARGUMENT', 'the body must be JSON: {"query": "...", "session": ...}', 400);
    }
    if (typeof body?.query !== 'string' || body.query.trim() === '') return fail('INVALID_ARGUMENT', '"query" must be a non-empty string', 400);
    const sessionId = typeof body.session === 'string' ? body.session : null;
    const timing = () => (performance.now() - started) / 1000;
    try {
      const { session, result } = await sessions.execute(creds, sessionId, body.query);
      return c.json({ session, result, timing: timing() });
    } catch (err) {
      if (!(err instanceof SqlError)) throw err;
      const status = statusOf[err.code];
      if (status) return fail(err.code, err.message, status);
      // SQL errors travel in a 200, as PlanetScale sends them; the driver raises DatabaseError.
      return c.json({ session: sessionId, error: { code: err.code, message: err.message }, timing: timing() });
    }
  });

  app.notFound((c) => fail('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`, 404));
  app.onError((err) => {
    if (err instanceof HTTPException) return fail('INVALID_ARGUMENT', err.message || 'bad request', err.status);
    log.error('unhandled error', { err });
    return fail('INTERNAL', 'internal error', 500);
  });
  return app;
}

function credentials(header: string | undefined): Credentials | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  // The driver sends the userinfo of its URL as it is, percent-encoded.
  return { user: unescape(decoded.slice(0, colon)), password: unescape(decoded.slice(colon + 1)) };
}

function unescape(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
