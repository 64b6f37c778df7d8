/** The OpenAPI document and the running apps agree: every documented route and status is produced, and matches. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createApp as convertApp } from '../functions/convert/app';
import { mp3Transcoder } from '../functions/convert/transcode';
import { createApp as downloadApp } from '../functions/download/app';
import { hashPassword } from '../functions/login/password';
import { createApp as loginApp, type LoginDeps } from '../functions/login/app';
import { defaultThrottlePolicy } from '../functions/login/throttle';
import { tokenIssuer } from '../functions/login/tokens';
import { SqliteUserStore } from '../functions/login/users/sqlite';
import { outboxMailer } from '../functions/notify/mail/outbox';
import { createApp as notifyApp } from '../functions/notify/app';
import { createApp as uploadApp, type UploadDeps } from '../functions/upload/app';
import { toHttp, type EarshotEvent } from '../shared/events';
import { linkSigner, loadLinkKeys } from '../shared/links';
import { memoryLogger } from '../shared/log';
import { openSqlite } from '../shared/sqlite';
import { ffmpegPath, makeVideo } from './media';
import { fileStores } from './stores';
import { alice, audience, bob, tempDir, testKeys } from './support';

type Doc = {
  paths: Record<string, Record<string, unknown> & { 'x-earshot-function': string }>;
  components: { responses: Record<string, DocResponse> };
};
type DocResponse = { $ref?: string; headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema: object }> };

const doc = parse(await readFile(new URL('../functions/openapi.yaml', import.meta.url), 'utf8')) as Doc;
const methods = ['get', 'post', 'put', 'delete', 'patch', 'head'];

/** Every (method, path, status) the document promises. */
const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([method]) => methods.includes(method))
    .flatMap(([method, op]) => Object.keys((op as { responses: object }).responses).map((status) => `${method.toUpperCase()} ${path} ${status}`)),
);
/** Other ways to a documented response, each checked against the document too: `<method> <path> <status> (<how>)`. */
const variants = [
  'GET /download/{id} 200 (signed link)',
  'GET /download/{id} 206 (signed link)',
  'GET /download/{id} 304 (signed link)',
  'GET /download/{id} 404 (signed link, changed)',
  'GET /download/{id} 410 (an expired MP3)',
  'POST /upload 413 (over the storage quota)',
];
const documentedAs = (key: string) => key.split(' ').slice(0, 3).join(' ');

describe('OpenAPI document', () => {
  const log = memoryLogger();
  const scenarios: Record<string, () => Promise<Response>> = {};
  type Requester = { request: (path: string, init?: RequestInit) => Response | Promise<Response> };
  let apps: Record<'login' | 'upload' | 'convert' | 'notify' | 'download', Requester>;

  beforeAll(async () => {
    const dir = await tempDir();
    const keys = await testKeys(dir);
    const links = await linkSigner(await loadLinkKeys(undefined, dir), 3600);
    const stores = await fileStores(dir);
    const users = new SqliteUserStore(await openSqlite(join(dir, 'users.db')));
    await users.create({ email: alice.email, passwordHash: await hashPassword('alice password'), role: 'user' });
    const token = await keys.tokenFor(alice);
    const bobToken = await keys.tokenFor(bob);
    const emitted: EarshotEvent[] = [];
    const loginDeps: LoginDeps = { users, issueToken: tokenIssuer(keys.key, audience, 600), publicKeys: keys.publicKeys, log };
    const uploadDeps: UploadDeps = { ...stores, verify: keys.verify, emit: async (e) => void emitted.push(e), maxUploadBytes: 200_000, limits: { inFlight: 100, perDay: 100 }, log };
    const convertDeps = { ...stores, transcode: mp3Transcoder({ ffmpegPath, quality: 4, timeoutSeconds: 60 }), leaseMs: 60_000, log };
    apps = {
      login: loginApp(loginDeps),
      upload: uploadApp(uploadDeps),
      convert: convertApp(convertDeps),
      notify: notifyApp({ jobs: stores.jobs, mailer: outboxMailer(join(dir, 'outbox'), log), log, claimStaleMs: 60_000, from: 'x@earshot.test', downloadUrl: new URL('http://localhost'), links }),
      download: downloadApp({ ...stores, verify: keys.verify, links, log }),
    };

    const video = new Uint8Array(await readFile(await makeVideo(join(dir, 'v.mp4'), { seconds: 2 })));
    const bearer = (t = token) => ({ authorization: `Bearer ${t}` });
    const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`${alice.email}:${password}`).toString('base64')}` });
    const form = (...parts: Blob[]) => {
      const body = new FormData();
      parts.forEach((part, i) => body.append(`f${i}`, part, `v${i}.mp4`));
      return body;
    };
    const upload = (body: BodyInit, app = apps.upload) => app.request('/upload', { method: 'POST', body, headers: bearer() });

    // One converted video to download.
    const accepted = (await (await upload(form(new Blob([video])))).json()) as { videoId: string };
    const id = accepted.videoId;
    const { headers, body } = toHttp(emitted.find((e) => e.subject === id)!);
    expect((await apps.convert.request('/', { method: 'POST', headers, body })).status).toBe(200);
    const etag = (await apps.download.request(`/download/${id}`, { headers: bearer() })).headers.get('etag')!;
    const signed = `/download/${id}?sig=${(await links.sign(id)).token}`;
    const signedLongAgo = `/download/${id}?sig=${(await links.sign(id, new Date('2026-01-01T00:00:00Z'))).token}`;

    Object.assign(scenarios, {
      'POST /login 200': () => apps.login.request('/login', { method: 'POST', headers: basic('alice password') }),
      'POST /login 401': () => apps.login.request('/login', { method: 'POST', headers: basic('wrong') }),
      'POST /login 429': async () => {
        // One free failure here; an email without an account is locked just as one with.
        const strict = loginApp({ ...loginDeps, throttle: { ...defaultThrottlePolicy, accountFreeFailures: 1 } });
        const guess = { authorization: `Basic ${Buffer.from('nobody@example.com:guess').toString('base64')}` };
        expect((await strict.request('/login', { method: 'POST', headers: guess })).status).toBe(401);
        return strict.request('/login', { method: 'POST', headers: guess });
      },
      'POST /login 503': async () => {
        // One hash at a time, and that one held until the second login has been answered.
        let entered!: () => void;
        let finish!: () => void;
        const inside = new Promise<void>((resolve) => (entered = resolve));
        const held = new Promise<void>((resolve) => (finish = resolve));
        const hold = async () => (entered(), await held, false as const);
        const busy = loginApp({ ...loginDeps, maxConcurrentHashes: 1, passwords: { verify: hold, verifyNobody: hold } });
        const first = busy.request('/login', { method: 'POST', headers: basic('alice password') });
        await inside;
        const refused = await busy.request('/login', { method: 'POST', headers: basic('alice password') });
        finish();
        await first;
        return refused;
      },
      'GET /.well-known/jwks.json 200': () => apps.login.request('/.well-known/jwks.json'),
      'POST /upload 202': () => upload(form(new Blob([video]))),
      'POST /upload 400': () => upload(form(new Blob([video]), new Blob([video]))),
      'POST /upload 401': () => apps.upload.request('/upload', { method: 'POST', body: form(new Blob([video])) }),
      'POST /upload 413': () => upload(form(new Blob([video, new Uint8Array(300_000)]))),
      'POST /upload 413 (over the storage quota)': () => upload(form(new Blob([video])), uploadApp({ ...uploadDeps, quotaBytes: 1 })),
      'POST /upload 415': () => upload(form(new Blob(['plain text, not a video'.repeat(100)]))),
      // alice has uploaded already today; this upload app allows one a day.
      'POST /upload 429': () => upload(form(new Blob([video])), uploadApp({ ...uploadDeps, limits: { inFlight: 100, perDay: 1 } })),
      'POST /upload 503': () => upload(form(new Blob([video])), uploadApp({ ...uploadDeps, emit: () => Promise.reject(new Error('down')) })),
      'GET /download/{id} 200': () => apps.download.request(`/download/${id}`, { headers: bearer() }),
      'GET /download/{id} 206': () => apps.download.request(`/download/${id}`, { headers: { ...bearer(), range: 'bytes=0-99' } }),
      'GET /download/{id} 304': () => apps.download.request(`/download/${id}`, { headers: { ...bearer(), 'if-none-match': etag } }),
      'GET /download/{id} 401': () => apps.download.request(`/download/${id}`, { headers: bearer('bad') }),
      'GET /download/{id} 404': () => apps.download.request(`/download/${id}`, { headers: bearer(bobToken) }),
      'GET /download/{id} 410': () => apps.download.request(signedLongAgo),
      'GET /download/{id} 416': () => apps.download.request(`/download/${id}`, { headers: { ...bearer(), range: 'bytes=99999999-' } }),
      'GET /download/{id} 200 (signed link)': () => apps.download.request(signed),
      'GET /download/{id} 206 (signed link)': () => apps.download.request(signed, { headers: { range: 'bytes=0-99' } }),
      'GET /download/{id} 304 (signed link)': () => apps.download.request(signed, { headers: { 'if-none-match': etag } }),
      'GET /download/{id} 404 (signed link, changed)': () => apps.download.request(signed.replace(/\.(.)([^.]*)$/, (_, first: string, rest: string) => `.${first === 'A' ? 'B' : 'A'}${rest}`)),
      'GET /download 200': () => apps.download.request(`/download?fid=${id}`, { headers: bearer() }),
      'GET /download 401': () => apps.download.request(`/download?fid=${id}`),
      'GET /download 404': () => apps.download.request(`/download?fid=nope`, { headers: bearer() }),
      'GET /jobs/{id} 200': () => apps.download.request(`/jobs/${id}`, { headers: bearer() }),
      'GET /jobs/{id} 401': () => apps.download.request(`/jobs/${id}`),
      'GET /jobs/{id} 404': () => apps.download.request(`/jobs/${id}`, { headers: bearer(bobToken) }),
      'DELETE /jobs/{id} 204': async () => {
        const doomed = ((await (await upload(form(new Blob([video])))).json()) as { videoId: string }).videoId;
        return apps.download.request(`/jobs/${doomed}`, { method: 'DELETE', headers: bearer() });
      },
      'DELETE /jobs/{id} 401': () => apps.download.request(`/jobs/${id}`, { method: 'DELETE' }),
      'DELETE /jobs/{id} 404': () => apps.download.request(`/jobs/${id}`, { method: 'DELETE', headers: bearer(bobToken) }),
      'GET /download/{id} 410 (an expired MP3)': async () => {
        // Converted as any other, then past its keeping: as if MP3_RETENTION_DAYS were over.
        const old = ((await (await upload(form(new Blob([video])))).json()) as { videoId: string }).videoId;
        const { headers, body } = toHttp(emitted.find((e) => e.subject === old)!);
        await convertApp({ ...convertDeps, retentionMs: -1000 }).request('/', { method: 'POST', headers, body });
        return apps.download.request(`/download/${old}`, { headers: bearer() });
      },
      'GET /jobs 200': () => apps.download.request('/jobs?limit=1', { headers: bearer() }),
      'GET /jobs 400': () => apps.download.request('/jobs?limit=0', { headers: bearer() }),
      'GET /jobs 401': () => apps.download.request('/jobs'),
      // The job is converted: the stream replays its statuses and ends.
      'GET /jobs/{id}/events 200': () => apps.download.request(`/jobs/${id}/events`, { headers: bearer() }),
      'GET /jobs/{id}/events 400': () => apps.download.request(`/jobs/${id}/events`, { headers: { ...bearer(), 'last-event-id': 'latest' } }),
      'GET /jobs/{id}/events 401': () => apps.download.request(`/jobs/${id}/events`),
      'GET /jobs/{id}/events 404': () => apps.download.request(`/jobs/${id}/events`, { headers: bearer(bobToken) }),
      'GET /healthz 200': () => apps.notify.request('/healthz'),
    });
  });

  it('is OpenAPI 3.1 and every path names the function that serves it', () => {
    expect((doc as unknown as { openapi: string }).openapi).toMatch(/^3\.1\./);
    for (const item of Object.values(doc.paths)) expect([...Object.keys(apps), 'all']).toContain(item['x-earshot-function']);
  });

  it('documents exactly the responses the apps are checked for', () => {
    expect(documented.sort()).toEqual(Object.keys(scenarios).filter((key) => !variants.includes(key)).sort());
    expect(variants.filter((key) => !(key in scenarios) || !documented.includes(documentedAs(key)))).toEqual([]);
  });

  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  ajv.addSchema(doc, 'openapi');
  const resolve = (response: DocResponse): DocResponse => {
    if (!response.$ref) return response;
    return { ...doc.components.responses[response.$ref.split('/').pop()!]!, ...response, $ref: undefined };
  };

  it.each([...documented, ...variants])('%s: the app answers as documented', async (key) => {
    const [method, path, status] = key.split(' ') as [string, string, string];
    const res = await scenarios[key]!();
    expect(res.status).toBe(Number(status));

    const pathItem = doc.paths[path]!;
    const op = pathItem[method.toLowerCase()] as { responses: Record<string, DocResponse> };
    const promised = resolve(op.responses[status]!);
    for (const [name, header] of Object.entries(promised.headers ?? {})) {
      if (header.required || name !== 'Cache-Control') expect(res.headers.get(name), name).not.toBeNull();
    }
    const body = await res.text();
    if (!promised.content) {
      expect(body).toBe('');
      return;
    }
    const type = res.headers.get('content-type')!.split(';')[0]!;
    expect(Object.keys(promised.content)).toContain(type);
    if (type === 'text/event-stream') {
      // Each event's data against its schema: status → Job, progress → JobProgress.
      const events = body.split('\n\n').filter((block) => /^event: /m.test(block));
      expect(events.length).toBeGreaterThan(0);
      for (const block of events) {
        const event = /^event: (.*)$/m.exec(block)![1];
        const validate = ajv.compile({ $ref: `openapi#/components/schemas/${event === 'progress' ? 'JobProgress' : 'Job'}` });
        expect(validate(JSON.parse(/^data: (.*)$/m.exec(block)![1]!)), `${block}\n${JSON.stringify(validate.errors)}`).toBe(true);
      }
    }
    if (type.endsWith('json')) {
      const opPointer = `openapi#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}/${method.toLowerCase()}/responses/${status}`;
      const schema = promised.content[type]!.schema;
      const validate = ajv.compile({ $ref: (schema as { $ref?: string }).$ref ? `openapi${(schema as { $ref: string }).$ref}` : `${opPointer}/content/${type.replace('/', '~1')}/schema` });
      expect(validate(JSON.parse(body)), JSON.stringify(validate.errors)).toBe(true);
    }
  });

  it.each(['login', 'upload', 'convert', 'notify', 'download'] as const)('/healthz answers on %s', async (name) => {
    const res = await apps[name].request('/healthz');
    expect(res.status).toBe(200);
  });
});
