import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { alice, audience, tempDir, testKeys, type TestKeys } from '../test/support';
import { tokenVerifier } from './auth';

describe('tokenVerifier', () => {
  let keys: TestKeys;
  beforeAll(async () => {
    keys = await testKeys(await tempDir());
  });

  it('remembers a verified token until it expires, and no longer', async () => {
    const verify = tokenVerifier(keys.publicKeys, audience);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ email: alice.email, role: 'user' })
      .setProtectedHeader({ alg: 'EdDSA', kid: keys.key.kid })
      .setIssuer('earshot')
      .setAudience('earshot')
      .setSubject(alice.id)
      .setExpirationTime(now + 2)
      .sign(keys.key.privateKey);
    expect(await verify(token)).toEqual(alice);
    expect(await verify(token)).toEqual(alice);
    await new Promise((r) => setTimeout(r, 2100));
    await expect(verify(token)).rejects.toThrow();
  });

  it('never takes a token for a remembered one that differs in its signature', async () => {
    const verify = tokenVerifier(keys.publicKeys, audience);
    const token = await keys.tokenFor(alice);
    await verify(token);
    const [header, payload, signature] = token.split('.');
    const flipped = signature![10] === 'A' ? 'B' : 'A';
    const forged = `${header}.${payload}.${signature!.slice(0, 10)}${flipped}${signature!.slice(11)}`;
    await expect(verify(forged)).rejects.toThrow();
  });
});
