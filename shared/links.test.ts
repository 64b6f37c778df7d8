import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeProtectedHeader, decodeJwt, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { alice, tempDir, testKeys } from '../test/support';
import { ConfigError } from './config';
import { generateLinkKey, linkSigner, loadLinkKeys, signedPath } from './links';

const id = '5b0c8a3e-0000-4000-8000-000000000001';
const other = '5b0c8a3e-0000-4000-8000-000000000002';
const now = new Date('2026-03-01T12:00:00.000Z');
const ttl = 3600;
const at = (seconds: number) => new Date(now.getTime() + seconds * 1000);

/** The token with the character at `index` of its signature replaced. */
const changed = (token: string, index = 5) => {
  const signatureStart = token.lastIndexOf('.') + 1;
  const i = signatureStart + index;
  return token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
};

describe('signed links', () => {
  it('sign one MP3 until now + TTL, as an HS256 JWT with kid, sub and exp', async () => {
    const key = generateLinkKey('k1');
    const links = await linkSigner({ keys: [key] }, ttl);
    const { token, expiresAt } = await links.sign(id, now);
    expect(expiresAt).toEqual(at(ttl));
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', kid: 'k1' });
    expect(decodeJwt(token)).toMatchObject({ sub: id, exp: at(ttl).getTime() / 1000 });
    expect(await links.verify(token, id, now)).toEqual({ ok: true });
    expect(await links.verify(token, id, at(ttl - 1))).toEqual({ ok: true });
    expect(signedPath(id, token)).toBe(`/download/${id}?sig=${token}`);
  });

  it('say when a link expired, from its exp on', async () => {
    const links = await linkSigner({ keys: [generateLinkKey()] }, ttl);
    const { token } = await links.sign(id, now);
    expect(await links.verify(token, id, at(ttl))).toEqual({ ok: false, reason: 'expired', expiredAt: at(ttl) });
    expect(await links.verify(token, id, at(30 * 24 * 3600))).toEqual({ ok: false, reason: 'expired', expiredAt: at(ttl) });
  });

  it('refuse a link for another MP3, expired or not', async () => {
    const links = await linkSigner({ keys: [generateLinkKey()] }, ttl);
    const { token } = await links.sign(other, now);
    expect(await links.verify(token, id, now)).toEqual({ ok: false, reason: 'other-mp3' });
    expect(await links.verify(token, id, at(ttl + 1))).toEqual({ ok: false, reason: 'other-mp3' });
  });

  it('refuse a changed signature, a changed id, and anything that is not one of its links', async () => {
    const key = generateLinkKey('k1');
    const links = await linkSigner({ keys: [key] }, ttl);
    const { token } = await links.sign(id, now);
    const [header, , signature] = token.split('.');
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const otherId = `${header}.${b64({ ...decodeJwt(token), sub: other })}.${signature}`;
    const sameKeyOtherAudience = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setSubject(id).setAudience('earshot').setExpirationTime(at(ttl)).sign(Buffer.from(key.k!, 'base64url'));
    const algNone = `${b64({ alg: 'none', kid: 'k1' })}.${b64({ sub: id, aud: 'earshot:download-link', exp: at(ttl).getTime() / 1000 })}.`;
    const loginToken = await (await testKeys(await tempDir())).tokenFor(alice);

    for (const bad of [changed(token), changed(token, 20), otherId, sameKeyOtherAudience, algNone, loginToken, '', 'not-a-token', `${token}${'x'.repeat(2000)}`]) {
      expect(await links.verify(bad, id, now), bad).toEqual({ ok: false, reason: 'invalid' });
      expect(await links.verify(bad, other, now), bad).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('rotate: the first key signs, every key in the set verifies, a key taken out no longer does', async () => {
    const [old, next] = [generateLinkKey('old'), generateLinkKey('new')];
    const before = await linkSigner({ keys: [old] }, ttl);
    const during = await linkSigner({ keys: [next, old] }, ttl);
    const after = await linkSigner({ keys: [next] }, ttl);
    const oldLink = (await before.sign(id, now)).token;
    const newLink = (await during.sign(id, now)).token;
    expect(decodeProtectedHeader(newLink).kid).toBe('new');
    expect(await during.verify(oldLink, id, now)).toEqual({ ok: true });
    expect(await after.verify(newLink, id, now)).toEqual({ ok: true });
    expect(await after.verify(oldLink, id, now)).toEqual({ ok: false, reason: 'invalid' });
    // Another deployment's key under the same kid signs nothing here.
    const impostor = await linkSigner({ keys: [generateLinkKey('new')] }, ttl);
    expect(await after.verify((await impostor.sign(id, now)).token, id, now)).toEqual({ ok: false, reason: 'invalid' });
  });
});

describe('link keys', () => {
  it('are generated once into DATA_DIR/keys for local development, readable by the owner alone', async () => {
    const dir = await tempDir();
    const first = await loadLinkKeys(undefined, dir);
    expect(first.keys).toEqual([expect.objectContaining({ kty: 'oct', alg: 'HS256', kid: expect.stringMatching(/^local-/) })]);
    expect(await loadLinkKeys(undefined, dir)).toEqual(first);
    expect((await stat(join(dir, 'keys', 'link-keys.local-dev.jwks.json'))).mode & 0o777).toBe(0o600);
    const links = await linkSigner(first, ttl);
    expect(await links.verify((await links.sign(id, now)).token, id, now)).toEqual({ ok: true });
  });

  it('name LINK_SIGNING_KEYS when no local key can be kept (a read-only image)', async () => {
    const err = await loadLinkKeys(undefined, '/dev/null/earshot-data').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ variable: 'LINK_SIGNING_KEYS', message: expect.stringContaining('set LINK_SIGNING_KEYS') });
  });

  it('take a key set from LINK_SIGNING_KEYS as given', async () => {
    const set = { keys: [generateLinkKey('a'), generateLinkKey('b')] };
    expect(await loadLinkKeys(JSON.stringify(set), '/dev/null/unused')).toEqual(set);
  });

  it.each([
    ['not JSON', '{keys:'],
    ['no keys', '{"keys":[]}'],
    ['not a set', '[]'],
    ['a public key', JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', kid: 'a' }] })],
    ['a short key', JSON.stringify({ keys: [{ kty: 'oct', k: Buffer.alloc(16).toString('base64url'), kid: 'a' }] })],
    ['a key without kid', JSON.stringify({ keys: [{ ...generateLinkKey(), kid: undefined }] })],
    ['two keys with one kid', JSON.stringify({ keys: [generateLinkKey('a'), generateLinkKey('a')] })],
    ['a key for another algorithm', JSON.stringify({ keys: [{ ...generateLinkKey(), alg: 'HS512' }] })],
  ])('refuse %s, naming LINK_SIGNING_KEYS', async (_case, value) => {
    await expect(loadLinkKeys(value, '/dev/null/unused')).rejects.toMatchObject({ name: 'ConfigError', variable: 'LINK_SIGNING_KEYS' });
  });
});
