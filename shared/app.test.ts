import { describe, expect, it } from 'vitest';
import { functionApp } from './app';
import { memoryLogger } from './log';
import { badRequest } from './problem';

function testApp() {
  const log = memoryLogger();
  const app = functionApp(log);
  app.post('/things', (c) => c.json({ ok: true }, 201));
  app.get('/things/:id', () => new Response('raw', { headers: { 'content-type': 'text/plain' } }));
  // Its headers are immutable.
  app.get('/elsewhere', () => Response.redirect('https://example.com/', 302));
  app.put('/things/:id', () => {
    throw badRequest('no');
  });
  app.get('/boom', () => {
    throw new Error('a bug');
  });
  return { app, log };
}

describe('every function app', () => {
  it('answers a known path asked with another method 405, with Allow, as problem+json', async () => {
    const { app } = testApp();
    for (const [method, path, allow] of [
      ['GET', '/things', 'POST'],
      ['DELETE', '/things/1', 'GET, HEAD, PUT'],
      ['POST', '/healthz', 'GET, HEAD'],
    ] as const) {
      const res = await app.request(path, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ status: 405, title: 'Method Not Allowed' });
    }
  });

  it('still answers 404 for an unknown path', async () => {
    const res = await testApp().app.request('/nothing', { method: 'DELETE' });
    expect(res.status).toBe(404);
    expect(res.headers.get('allow')).toBeNull();
  });

  it('sends X-Content-Type-Options: nosniff and X-Request-Id on every answer, raw Responses and errors included', async () => {
    const { app } = testApp();
    const answers = await Promise.all([
      app.request('/things', { method: 'POST' }),
      app.request('/things/1'),
      app.request('/things/1', { method: 'PUT' }),
      app.request('/things', { method: 'PATCH' }),
      app.request('/nothing'),
      app.request('/boom'),
      app.request('/healthz'),
      app.request('/elsewhere'),
    ]);
    expect(answers.map((res) => res.status)).toEqual([201, 200, 400, 405, 404, 500, 200, 302]);
    for (const res of answers) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-request-id')).toMatch(/^[\w-]+$/);
    }
  });

  it('answers an unexpected error 500 with the request id, logs it with its stack under that id, and keeps serving', async () => {
    const { app, log } = testApp();
    const res = await app.request('/boom', { headers: { 'x-request-id': 'req-42' } });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toEqual({ type: 'about:blank', title: 'Internal Server Error', status: 500, instance: '/boom', requestId: 'req-42' });
    const failure = log.lines.find((line) => line.msg === 'unhandled error')!;
    expect(failure).toMatchObject({ level: 'error', requestId: 'req-42', err: { message: 'a bug' } });
    expect(log.lines.find((line) => line.msg === 'request')).toMatchObject({ requestId: 'req-42', status: 500 });
    expect((await app.request('/healthz')).status).toBe(200);
  });

  it('takes the client\'s X-Request-Id only when it is a plain token', async () => {
    const { app } = testApp();
    const res = await app.request('/healthz', { headers: { 'x-request-id': 'evil"\u0001id' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
