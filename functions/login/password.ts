import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/**
 * OWASP's scrypt floor has equivalent settings; this one (N=2^14, r=8, p=5) costs the same CPU
 * as N=2^17, p=1 but needs 16 MiB instead of 128 MiB, which suits a small function.
 */
export const defaultParams: ScryptParams = { N: 2 ** 14, r: 8, p: 5 };
const keyLength = 32;

/** A self-describing hash: `scrypt$N=16384,r=8,p=5$<salt>$<key>`, base64url. */
export async function hashPassword(password: string, params: ScryptParams = defaultParams): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, params);
  return `scrypt$N=${params.N},r=${params.r},p=${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const match = /^scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([\w-]+)\$([\w-]+)$/.exec(stored);
  if (!match) return false;
  const [, N, r, p, salt, key] = match;
  const expected = Buffer.from(key!, 'base64url');
  const actual = await derive(password, Buffer.from(salt!, 'base64url'), { N: +N!, r: +r!, p: +p! }, expected.length);
  return timingSafeEqual(actual, expected);
}

let dummyHash: Promise<string> | undefined;

/** Spends what a real check costs, so an unknown email cannot be told apart by timing. */
export async function verifyNobody(password: string): Promise<false> {
  dummyHash ??= hashPassword('not a password of anyone');
  await verifyPassword(password, await dummyHash);
  return false;
}

function derive(password: string, salt: Buffer, { N, r, p }: ScryptParams, length = keyLength): Promise<Buffer> {
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}
