import { createHash } from 'node:crypto';
import { functionApp } from '../../shared/app';
import type { Logger } from '../../shared/log';
import type { PageAssets } from './assets';

export interface WebDeps {
  page: PageAssets;
  /** Where the page finds the functions it calls (on Knative, each Service has its own host). */
  endpoints: { login: URL; upload: URL; download: URL };
  log: Logger;
}

/** The web page: one HTML document that knows the functions' addresses, its script and its stylesheet. */
export function createApp({ page, endpoints, log }: WebDeps) {
  const app = functionApp(log);
  const origins = Object.values(endpoints).map((url) => url.origin);
  const config = JSON.stringify(Object.fromEntries(Object.entries(endpoints).map(([name, url]) => [name, url.href.replace(/\/$/, '')])));
  // JSON inside <script>: no "<" may close the element early.
  const html = page.html.replace('{{config}}', config.replace(/</g, '\\u003c'));
  const files = {
    '/': { body: html, type: 'text/html; charset=utf-8' },
    '/app.js': { body: page.script, type: 'text/javascript; charset=utf-8' },
    '/style.css': { body: page.css, type: 'text/css; charset=utf-8' },
  };
  const security = {
    // The page talks to the functions and nothing else; no inline script or style runs.
    'content-security-policy': [
      "default-src 'self'",
      `connect-src 'self' ${origins.join(' ')}`,
      `media-src ${[...new Set(origins)].join(' ')}`,
      "img-src 'self' data:",
      "frame-ancestors 'none'",
      "base-uri 'none'",
      "form-action 'self'",
    ].join('; '),
    'referrer-policy': 'no-referrer',
  };

  for (const [path, file] of Object.entries(files)) {
    const etag = `"${createHash('sha256').update(file.body).digest('base64url').slice(0, 16)}"`;
    app.get(path, (c) => {
      const headers = { 'content-type': file.type, etag, 'cache-control': 'no-cache', ...security };
      if (c.req.header('if-none-match') === etag) return new Response(null, { status: 304, headers });
      return new Response(file.body, { headers });
    });
  }
  return app;
}
