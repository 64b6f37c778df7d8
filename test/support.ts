/** Fixtures several suites share: temp dirs, keys and tokens made by the real code, free ports. */
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, type JSONWebKeySet } from 'jose';
import { tokenVerifier, type TokenAudience, type User } from '../shared/auth';
import { loadSigningKey, type SigningKey } from '../shared/keys';
import { tokenIssuer } from '../functions/login/tokens';

export const audience: TokenAudience = { issuer: 'earshot', audience: 'earshot' };

/** A temp dir under this test run's root, which test/global-setup.ts removes when the run ends. */
export async function tempDir(prefix = 'test-'): Promise<string> {
  return mkdtemp(join(process.env.EARSHOT_TEST_TMP ?? tmpdir(), prefix));
}

export interface TestKeys {
  key: SigningKey;
  publicKeys: JSONWebKeySet;
  verify: ReturnType<typeof tokenVerifier>;
  tokenFor(user: User, ttlSeconds?: number): Promise<string>;
}

export async function testKeys(dir: string): Promise<TestKeys> {
  const key = await loadSigningKey(undefined, dir);
  const publicKeys = { keys: [key.publicJwk] };
  return {
    key,
    publicKeys,
    verify: tokenVerifier(publicKeys, audience),
    tokenFor: async (user, ttlSeconds = 3600) => (await tokenIssuer(key, audience, ttlSeconds)(user)).token,
  };
}

export const alice: User = { id: 'user-alice', email: 'alice@example.com', role: 'user' };
export const bob: User = { id: 'user-bob', email: 'bob@example.com', role: 'user' };

/** The bad tokens every authenticated route must answer 401 to. */
export async function badTokens(keys: TestKeys, otherDir: string): Promise<Record<string, string>> {
  const other = await testKeys(otherDir);
  const now = Math.floor(Date.now() / 1000);
  const expired = await new SignJWT({ email: alice.email, role: 'user' })
    .setProtectedHeader({ alg: 'EdDSA', kid: keys.key.kid })
    .setIssuer(audience.issuer)
    .setAudience(audience.audience)
    .setSubject(alice.id)
    .setIssuedAt(now - 7200)
    .setExpirationTime(now - 3600)
    .sign(keys.key.privateKey);
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const algNone = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: alice.id, email: alice.email, role: 'admin', iss: 'earshot', aud: 'earshot', exp: now + 3600 })}.`;
  return {
    malformed: 'not-a-jwt',
    expired,
    wrongKey: await other.tokenFor(alice),
    algNone,
  };
}

/** Uploads a file the way a browser form does, to an upload app in this process; its video id. */
export async function uploadFile(app: { request(path: string, init: RequestInit): Response | Promise<Response> }, token: string, path: string, name: string): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(await readFile(path))]), name);
  const res = await app.request('/upload', { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { videoId: string }).videoId;
}

/** A TCP port nothing listens on now, for a process to take. */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
