import { cors } from 'hono/cors';
import { ConfigError } from './config';

/**
 * Cross-origin calls from the web page (on Knative each Service has a host of its own): only an
 * origin on the allow-list gets `Access-Control-Allow-Origin`, so a browser sends a token, and
 * shows an answer, to no other page. Tokens travel in `Authorization`; no cookie is ever allowed.
 */
export const corsFor = (origins: readonly string[]) =>
  cors({
    origin: (origin) => (origins.includes(origin) ? origin : null),
    allowMethods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowHeaders: ['authorization', 'content-type', 'last-event-id', 'range'],
    // What the page reads of an answer: problem details travel in the body; these in headers.
    exposeHeaders: ['content-disposition', 'content-range', 'retry-after', 'location', 'x-request-id'],
    maxAge: 600,
  });

/** `CORS_ORIGINS`: origins separated by commas or spaces, each exactly `scheme://host[:port]`. */
export function parseOrigins(value: string | undefined): string[] {
  const origins = (value ?? '').split(/[\s,]+/).filter(Boolean);
  for (const origin of origins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      // reported below
    }
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.origin !== origin) {
      throw new ConfigError('CORS_ORIGINS', `must list origins like https://earshot.example.com (scheme, host and port only), got "${origin}"`);
    }
  }
  return origins;
}
