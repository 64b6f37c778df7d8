import { beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../shared/log';
import { createApp } from './app';
import { buildPage, type PageAssets } from './assets';

describe('web', () => {
  let page: PageAssets;
  beforeAll(async () => {
    page = await buildPage();
  });
  const endpoints = {
    login: new URL('https://login.earshot.example'),
    upload: new URL('https://upload.earshot.example/'),
    download: new URL('https://download.earshot.example'),
  };
  const app = () => createApp({ page, endpoints, log: memoryLogger() });

  it('serves the page with the functions\' addresses, and a policy that lets it talk to them alone', async () => {
    const res = await app().request('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    const config = JSON.parse(/<script id="config" type="application\/json">(.*?)<\/script>/.exec(html)![1]!);
    expect(config).toEqual({ login: 'https://login.earshot.example', upload: 'https://upload.earshot.example', download: 'https://download.earshot.example' });
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain('connect-src \'self\' https://login.earshot.example https://upload.earshot.example https://download.earshot.example');
    expect(csp).toContain('media-src https://login.earshot.example https://upload.earshot.example https://download.earshot.example');
    expect(csp).not.toContain('unsafe-inline');
  });

  it('serves its script (bundled for browsers) and stylesheet, revalidated by ETag', async () => {
    const script = await app().request('/app.js');
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const code = await script.text();
    // The page's own script: it reads the config block and resumes event streams by id.
    expect(code).toContain('last-event-id');
    expect(code).toContain('config');
    expect(code).not.toMatch(/^import |\bexport /m); // bundled for browsers, not an ES module
    const css = await app().request('/style.css');
    expect(await css.text()).toContain('[hidden] { display: none !important; }');
    const again = await app().request('/app.js', { headers: { 'if-none-match': script.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  it('answers anything else with problem+json 404', async () => {
    const res = await app().request('/admin');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});
