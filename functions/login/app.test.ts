import { join } from 'node:path';
import { decodeProtectedHeader, jwtVerify, createLocalJWKSet } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { memoryLogger } from '../../shared/log';
import { openSqlite } from '../../shared/sqlite';
import { audience, tempDir, testKeys, type TestKeys } from '../../test/support';
import { createApp } from './app';
import { requestAddress } from './client-address';
import { hashPassword, verifyPassword } from './password';
import { defaultThrottlePolicy, type ThrottlePolicy } from './throttle';
import { tokenIssuer } from './tokens';
import { SqliteUserStore } from './users/sqlite';
import { MysqlUserStore } from './users/mysql';
import type { UserStore } from './users/store';
import { mysqlReachable, startMysqlProxy, type RunningProxy } from '../../test/mysql';
import { describeWithService } from '../../test/services';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const available = await mysqlReachable();
const cheap = { N: 1024, r: 8, p: 1 };
const random = (n: number) => Math.floor(Math.random() * n);
/** A public address of its own (198.18.0.0/15, for benchmarks): the MariaDB table outlives a run. */
const newAddress = () => `198.${18 + random(2)}.${random(256)}.${random(256)}`;

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
    const nobody = `nobody.${run}@example.com`;
    let users: UserStore;

    beforeAll(async () => {
      const dir = await tempDir();
      keys = await testKeys(dir);
      users = await openUsers(dir);
      await users.create({ email: alice, passwordHash: await hashPassword('correct horse: battery'), role: 'user' });
      await users.create({ email: root, passwordHash: await hashPassword('rootroot'), role: 'admin' });
      // These tests fail many logins on purpose; throttling has its own tests below.
      const lenient = { ...defaultThrottlePolicy, accountFreeFailures: 1000, addressFreeFailures: 1000 };
      const address = newAddress();
      app = createApp({ users, issueToken: tokenIssuer(keys.key, audience, 3600), publicKeys: keys.publicKeys, log, throttle: lenient, clientAddress: () => address });
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
      ['an unknown user', basic(nobody, 'correct horse: battery')],
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
      await time(nobody); // first call computes the dummy hash
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 5; i++) {
        known.push(await time(alice.toLowerCase()));
        unknown.push(await time(nobody));
      }
      // Both pay one scrypt; without the dummy verify, unknown would be ~100x faster.
      expect(median(unknown) / median(known)).toBeGreaterThan(0.5);
    });

    describe('throttling', () => {
      /** A login app of its own: a clock that moves only when told, and every password hash counted. */
      async function throttled({ policy = defaultThrottlePolicy, maxConcurrentHashes = 4, gate }: { policy?: ThrottlePolicy; maxConcurrentHashes?: number; gate?: Promise<void> } = {}) {
        const dummy = await hashPassword('not a password of anyone', cheap);
        const counts = { hashes: 0 };
        const clock = { now: Date.now() };
        const hashing = async <T>(work: () => Promise<T>) => {
          counts.hashes++;
          await gate;
          return work();
        };
        const login = createApp({
          users,
          issueToken: tokenIssuer(keys.key, audience, 3600),
          publicKeys: keys.publicKeys,
          log: memoryLogger(),
          throttle: policy,
          maxConcurrentHashes,
          now: () => clock.now,
          clientAddress: requestAddress('private'),
          passwords: {
            verify: (password, hash) => hashing(() => verifyPassword(password, hash)),
            verifyNobody: (password) => hashing(async () => (await verifyPassword(password, dummy), false as const)),
          },
        });
        const attempt = (email: string, password: string, address: string) =>
          login.request('/login', { method: 'POST', headers: { authorization: basic(email, password), 'x-forwarded-for': `${address}, 10.0.0.7` } });
        return { attempt, clock, counts };
      }
      const newUser = async (password = 'the right password') => {
        const email = `u.${run}.${random(1e9)}@example.com`;
        await users.create({ email, passwordHash: await hashPassword(password, cheap), role: 'user' });
        return email;
      };
      /** Statuses of `times` attempts, one after another. */
      const statuses = async (times: number, attempt: () => Response | Promise<Response>) => {
        const answers: number[] = [];
        for (let i = 0; i < times; i++) answers.push((await attempt()).status);
        return answers;
      };

      it('answers 30 wrong passwords with 401 for the free ones, then 429 problem+json with Retry-After, hashing none of those', async () => {
        const { attempt, counts } = await throttled();
        const email = await newUser();
        const address = newAddress();
        const answers: Response[] = [];
        for (let i = 0; i < 30; i++) answers.push(await attempt(email, `wrong ${i}`, address));
        expect(answers.map((r) => r.status)).toEqual([...Array(5).fill(401), ...Array(25).fill(429)]);
        expect(counts.hashes).toBe(5);
        for (const res of answers.slice(5)) {
          expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
          expect(res.headers.get('content-type')).toBe('application/problem+json');
          expect(await res.json()).toMatchObject({ status: 429, title: 'Too Many Requests' });
        }
        // Locked means locked: the right password is refused too, and costs no hash either.
        expect((await attempt(email, 'the right password', address)).status).toBe(429);
        expect(counts.hashes).toBe(5);
      });

      it('lets the right password in once the window has passed, and a success resets the account', async () => {
        const { attempt, clock } = await throttled();
        const email = await newUser();
        const address = newAddress();
        for (let i = 0; i < 5; i++) await attempt(email, 'wrong', address);
        const locked = await attempt(email, 'the right password', address);
        expect(locked.status).toBe(429);
        clock.now += Number(locked.headers.get('retry-after')) * 1000 - 1;
        expect((await attempt(email, 'the right password', address)).status).toBe(429);
        clock.now += 1;
        expect((await attempt(email, 'the right password', address)).status).toBe(200);
        expect(await statuses(5, () => attempt(email, 'wrong', address))).toEqual(Array(5).fill(401));
      });

      it('doubles the lock with each failure past the free ones, up to the cap', async () => {
        const policy = { ...defaultThrottlePolicy, accountFreeFailures: 2, firstLockSeconds: 3, maxLockSeconds: 20 };
        const { attempt, clock } = await throttled({ policy });
        const email = await newUser();
        const address = newAddress();
        const waits: number[] = [];
        await attempt(email, 'wrong', address);
        for (let i = 0; i < 5; i++) {
          expect((await attempt(email, 'wrong', address)).status).toBe(401);
          const res = await attempt(email, 'wrong', address);
          expect(res.status).toBe(429);
          waits.push(Number(res.headers.get('retry-after')));
          clock.now += waits.at(-1)! * 1000;
        }
        expect(waits).toEqual([3, 6, 12, 20, 20]);
      });

      it('forgets the failures of a key quiet for the forget period', async () => {
        const { attempt, clock } = await throttled();
        const email = await newUser();
        const address = newAddress();
        for (let i = 0; i < 9; i++) await attempt(email, 'wrong', address);
        expect((await attempt(email, 'wrong', address)).status).toBe(429);
        clock.now += defaultThrottlePolicy.forgetAfterSeconds * 1000 + 1;
        expect(await statuses(4, () => attempt(email, 'wrong', address))).toEqual(Array(4).fill(401));
      });

      it('counts failures per client address across accounts, and only that address is locked', async () => {
        const { attempt, counts } = await throttled();
        const known = await newUser();
        const address = newAddress();
        const answers = await statuses(defaultThrottlePolicy.addressFreeFailures, () => attempt(`guess.${run}.${random(1e9)}@example.com`, 'wrong', address));
        expect(answers).toEqual(Array(defaultThrottlePolicy.addressFreeFailures).fill(401));
        const hashed = counts.hashes;
        expect((await attempt(`guess.${run}.${random(1e9)}@example.com`, 'wrong', address)).status).toBe(429);
        expect((await attempt(known, 'the right password', address)).status).toBe(429);
        expect(counts.hashes).toBe(hashed);
        expect((await attempt(known, 'the right password', newAddress())).status).toBe(200);
      });

      it('throttles an unknown email exactly as a known one: same answers, same waits, same hashing', async () => {
        const { attempt, counts } = await throttled();
        const known = await newUser();
        const unknown = `ghost.${run}.${random(1e9)}@example.com`;
        const run8 = async (email: string) => {
          const address = newAddress();
          const before = counts.hashes;
          const answers: string[] = [];
          for (let i = 0; i < 8; i++) {
            const res = await attempt(email, 'wrong', address);
            answers.push(`${res.status} ${res.headers.get('retry-after')} ${(await res.json()).detail}`);
          }
          return { answers, hashes: counts.hashes - before };
        };
        const a = await run8(known);
        expect(a.answers.filter((x) => x.startsWith('429'))).toHaveLength(3);
        expect(await run8(unknown)).toEqual(a);
      });

      it('answers the logins beyond the hash bound with 503 problem+json and Retry-After at once, without hashing', async () => {
        let open!: () => void;
        const gate = new Promise<void>((resolve) => (open = resolve));
        const { attempt, counts } = await throttled({ maxConcurrentHashes: 2, gate });
        const email = await newUser();
        const held = [attempt(email, 'wrong', newAddress()), attempt(email, 'wrong', newAddress())];
        await vi.waitFor(() => expect(counts.hashes).toBe(2));
        const excess = await Promise.all([1, 2, 3, 4, 5].map(() => attempt(email, 'the right password', newAddress())));
        expect(excess.map((r) => r.status)).toEqual(Array(5).fill(503));
        for (const res of excess) {
          expect(res.headers.get('retry-after')).toBe('1');
          expect(res.headers.get('content-type')).toBe('application/problem+json');
          expect(await res.json()).toMatchObject({ status: 503 });
        }
        expect(counts.hashes).toBe(2);
        open();
        expect((await Promise.all(held)).map((r) => r.status)).toEqual([401, 401]);
        // The slots are free again, and the refused attempts were not counted as failures.
        expect((await attempt(email, 'the right password', newAddress())).status).toBe(200);
      });
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
