import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword, verifyNobody } from './password';

const cheap = { N: 1024, r: 8, p: 1 };

describe('password hashing', () => {
  it('stores a self-describing scrypt hash with a per-user salt, never the password', async () => {
    const a = await hashPassword('hunter2hunter2');
    const b = await hashPassword('hunter2hunter2');
    expect(a).toMatch(/^scrypt\$N=16384,r=8,p=5\$[\w-]{22}\$[\w-]{43}$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('hunter2');
  });

  it('verifies the right password and rejects a wrong one', async () => {
    const hash = await hashPassword('pässwörd with spaces', cheap);
    expect(await verifyPassword('pässwörd with spaces', hash)).toBe(true);
    expect(await verifyPassword('pässwörd with space', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });

  it('treats canonically equal Unicode passwords as equal', async () => {
    const hash = await hashPassword('caf\u00e9', cheap);
    expect(await verifyPassword('cafe\u0301', hash)).toBe(true);
  });

  it('uses the parameters recorded in the hash', async () => {
    const hash = await hashPassword('secret', cheap);
    expect(hash).toMatch(/^scrypt\$N=1024,r=8,p=1\$/);
    expect(await verifyPassword('secret', hash)).toBe(true);
  });

  it('rejects hashes it cannot read instead of throwing', async () => {
    expect(await verifyPassword('secret', 'plain-text-password')).toBe(false);
    expect(await verifyPassword('secret', 'scrypt$N=1024,r=8,p=1$abc')).toBe(false);
  });

  it('never verifies anyone in the dummy check', async () => {
    expect(await verifyNobody('not a password of anyone')).toBe(false);
  });
});
