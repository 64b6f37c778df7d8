import { describe, expect, it } from 'vitest';
import { functionApp } from './app';
import { ConfigError } from './config';
import { parseOrigins } from './cors';
import { memoryLogger } from './log';
import { Problem } from './problem';

const page = 'https://earshot.example.com';
const app = functionApp(memoryLogger(), { corsOrigins: [page, 'http://localhost:8088'] });
app.post('/upload', () => {
  throw new Problem({ status: 413, title: 'Content Too Large', detail: 'Over 1 GiB.' });
});
app.get('/jobs', (c) => c.json([]));

const preflight = (origin: string) =>
  app.request('/upload', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });

describe('CORS for the web page', () => {
  it('answers a preflight from a listed origin: that origin, the methods, and the Authorization header allowed', async () => {
    const res = await preflight(page);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(page);
    expect(res.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('vary')).toContain('Origin');
  });

  it('allows no other origin: a browser then sends no token and shows no answer', async () => {
    for (const origin of ['https://evil.example', 'https://earshot.example.com.evil.example', 'null', 'http://earshot.example.com']) {
      expect((await preflight(origin)).headers.get('access-control-allow-origin')).toBeNull();
      expect((await app.request('/jobs', { headers: { origin } })).headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('lets the page read answers, problem+json errors included', async () => {
    const ok = await app.request('/jobs', { headers: { origin: page } });
    expect(ok.headers.get('access-control-allow-origin')).toBe(page);
    const problem = await app.request('/upload', { method: 'POST', headers: { origin: page } });
    expect(problem.status).toBe(413);
    expect(problem.headers.get('content-type')).toBe('application/problem+json');
    expect(problem.headers.get('access-control-allow-origin')).toBe(page);
    expect(problem.headers.get('access-control-expose-headers')).toContain('retry-after');
  });

  it('is off without CORS_ORIGINS: a preflight is a 405 like any unknown method', async () => {
    const plain = functionApp(memoryLogger());
    plain.post('/upload', (c) => c.body(null, 202));
    const res = await plain.request('/upload', { method: 'OPTIONS', headers: { origin: page, 'access-control-request-method': 'POST' } });
    expect(res.status).toBe(405);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('reads CORS_ORIGINS as origins, and names the setting for anything else', () => {
    expect(parseOrigins(undefined)).toEqual([]);
    expect(parseOrigins(' https://a.example, http://localhost:8088 ')).toEqual(['https://a.example', 'http://localhost:8088']);
    for (const bad of ['https://a.example/', 'a.example', 'ftp://a.example', 'https://a.example/page', '*']) {
      expect(() => parseOrigins(bad)).toThrow(ConfigError);
      expect(() => parseOrigins(bad)).toThrow(/^CORS_ORIGINS must list origins/);
    }
  });
});
