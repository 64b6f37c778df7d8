import { join } from 'node:path';
import { decodeProtectedHeader, jwtVerify, createLocalJWKSet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../shared/log';
import { openSqlite } from '../../shared/sqlite';
import { audience, tempDir, testKeys, type TestKeys } from '../../test/support';
import { createApp } from './app';
import { hashPassword } from './password';
import { tokenIssuer } from './tokens';
import { SqliteUserStore } from './users/sqlite';
import { MysqlUserStore } from './users/mysql';
import type { UserStore } from './users/store';
import { mysqlReachable, startMysqlProxy, type RunningProxy } from '../../test/mysql';
import { describeWithService } from '../../test/services';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const available = await mysqlReachable();

loginSuite('SQLite', async (dir) => new SqliteUserStore(await openSqlite(join(dir, 'users.db'))));

describeWithService('MariaDB', available, 'login on MariaDB', () => {
  let proxy: RunningProxy;
  beforeAll(async () => {
    proxy = await startMysqlProxy();
  });
  afterAll(() => proxy?.close());
  loginSuite('MariaDB through mysql-proxy', async () => {
    const users = new MysqlUserStore(proxy.url);
    await users.migrate();
    return users;
  });
});

function loginSuite(backend: string, openUsers: (dir: string) => Promise<UserStore>) {
  describe(`login (users in ${backend})`, () => {
    let app: ReturnType<typeof createApp>;
    let keys: TestKeys;
    const log = memoryLogger();
    // Emails unique to this run: the MariaDB database outlives it.
    const run = Math.random().toString(36).slice(2, 8);
    const alice = `Alice.${run}@Example.com`;
    const root = `root.${run}@example.com`;

    beforeAll(async () => {
      const dir = await tempDir();
      keys = await testKeys(dir);
      const users = await openUsers(dir);
      await users.create({ email: alice, passwordHash: await hashPassword('correct horse: battery'), role: 'user' });
      await users.create({ email: root, passwordHash: await hashPassword('rootroot'), role: 'admin' });
      app = createApp({ users, issueToken: tokenIssuer(keys.key, audience, 3600), publicKeys: keys.publicKeys, log });
    });

    it('answers a correct email:password with an EdDSA JWT carrying iss, aud, sub, email, role, iat, exp', async () => {
      const res = await app.request('/login', { method: 'POST', headers: { authorization: basic(alice.toLowerCase(), 'correct horse: battery') } });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as { token: string; expiresAt: string };
      expect(decodeProtectedHeader(body.token)).toMatchObject({ alg: 'EdDSA', kid: keys.key.kid });
      const { payload } = await jwtVerify(body.token, createLocalJWKSet(keys.publicKeys), { ...audience, algorithms: ['EdDSA'] });
      expect(payload).toMatchObject({ iss: 'earshot', aud: 'earshot', email: alice.toLowerCase(), role: 'user' });
      expect(typeof payload.sub).toBe('string');
      expect(payload.exp! - payload.iat!).toBe(3600);
      expect(new Date(body.expiresAt).getTime()).toBe(payload.exp! * 1000);
      expect(await keys.verify(body.token)).toMatchObject({ email: alice.toLowerCase(), role: 'user' });
    });

    it('carries the admin role of an admin', async () => {
      const res = await app.request('/login', { method: 'POST', headers: { authorization: basic(root, 'rootroot') } });
      const { token } = (await res.json()) as { token: string };
      expect((await keys.verify(token)).role).toBe('admin');
    });

    it('gives the bare token as text to clients that ask for text, as the original system did', async () => {
      const res = await app.request('/login', {
        method: 'POST',
        headers: { authorization: basic(alice.toLowerCase(), 'correct horse: battery'), accept: 'text/plain' },
      });
      expect(res.status).toBe(200);
      expect(await keys.verify(await res.text())).toMatchObject({ email: alice.toLowerCase() });
    });

    it.each([
      ['no header', undefined],
      ['a Bearer header', 'Bearer abc'],
      ['invalid base64', 'Basic !!!'],
      ['no colon', `Basic ${Buffer.from(alice).toString('base64')}`],
      ['an empty password', basic(alice.toLowerCase(), '')],
      ['a wrong password', basic(alice.toLowerCase(), 'wrong')],
      ['an unknown user', basic('nobody@example.com', 'correct horse: battery')],
    ])('answers %s with 401, a Basic challenge and problem+json', async (_case, authorization) => {
      const res = await app.request('/login', { method: 'POST', headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="earshot"/);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ status: 401, title: 'Unauthorized' });
    });

    it('logs each rejected login without the credentials', async () => {
      await app.request('/login', { method: 'POST', headers: { authorization: basic(alice.toLowerCase(), 'sekrit-guess') } });
      const lines = JSON.stringify(log.lines);
      expect(log.lines.some((l) => l.msg === 'rejected' && l.status === 401)).toBe(true);
      expect(lines).not.toContain('sekrit-guess');
    });

    it('spends about as long on an unknown user as on a wrong password', async () => {
      const time = async (user: string) => {
        const started = performance.now();
        await app.request('/login', { method: 'POST', headers: { authorization: basic(user, 'wrong password') } });
        return performance.now() - started;
      };
      await time('nobody@example.com'); // first call computes the dummy hash
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 5; i++) {
        known.push(await time(alice.toLowerCase()));
        unknown.push(await time('nobody@example.com'));
      }
      // Both pay one scrypt; without the dummy verify, unknown would be ~100x faster.
      expect(median(unknown) / median(known)).toBeGreaterThan(0.5);
    });

    it('serves the public key set, without private parts', async () => {
      const res = await app.request('/.well-known/jwks.json');
      expect(res.status).toBe(200);
      const jwks = (await res.json()) as { keys: Record<string, string>[] };
      expect(jwks.keys).toHaveLength(1);
      expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: keys.key.kid, alg: 'EdDSA' });
      expect(jwks.keys[0]).not.toHaveProperty('d');
    });

    it('answers unknown routes with a problem+json 404', async () => {
      const res = await app.request('/nope');
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
    });
  });
}
