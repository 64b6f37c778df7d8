import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile, link, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from 'jose';
import { ConfigError } from './config';

/** Tokens are EdDSA over Ed25519; the algorithm is pinned on both sides. */
export const JWT_ALG = 'EdDSA';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * The private key from `JWT_PRIVATE_KEY` (a JWK with `kid`), or, for local development,
 * one generated into the data dir on first use.
 */
export async function loadSigningKey(privateKeyJson: string | undefined, dataDir: string): Promise<SigningKey> {
  const jwk = privateKeyJson ? parseJwk(privateKeyJson) : await localPrivateJwk(dataDir, 'JWT_PRIVATE_KEY');
  if (!jwk.kid) throw new ConfigError('JWT_PRIVATE_KEY', 'must have a "kid" (key id), used for rotation');
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.d) {
    throw new ConfigError('JWT_PRIVATE_KEY', 'must be an Ed25519 private key (kty OKP, crv Ed25519, with d)');
  }
  const privateKey = (await importJWK(jwk, JWT_ALG)) as CryptoKey;
  const { d: _private, ...publicJwk } = jwk;
  return { kid: jwk.kid, privateKey, publicJwk: { ...publicJwk, alg: JWT_ALG, use: 'sig' } };
}

/**
 * The public key set from `JWT_PUBLIC_KEYS` (a JWKS, which may hold old keys during rotation),
 * or the local development key's public half.
 */
export async function loadPublicKeys(publicKeysJson: string | undefined, dataDir: string): Promise<JSONWebKeySet> {
  if (publicKeysJson) {
    let set: unknown;
    try {
      set = JSON.parse(publicKeysJson);
    } catch {
      throw new ConfigError('JWT_PUBLIC_KEYS', 'must be a JSON Web Key Set ({"keys": [...]}), not valid JSON');
    }
    const keys = (set as JSONWebKeySet)?.keys;
    if (!Array.isArray(keys) || keys.length === 0 || keys.some((k) => !k.kid || 'd' in k)) {
      throw new ConfigError('JWT_PUBLIC_KEYS', 'must be a JSON Web Key Set of public keys, each with a "kid"');
    }
    return set as JSONWebKeySet;
  }
  // The local key's public half, read without importing the private key (a verifier needs none).
  const { d: _private, ...publicJwk } = await localPrivateJwk(dataDir, 'JWT_PUBLIC_KEYS');
  return { keys: [{ ...publicJwk, alg: JWT_ALG, use: 'sig' }] };
}

function parseJwk(json: string): JWK {
  try {
    return JSON.parse(json) as JWK;
  } catch {
    throw new ConfigError('JWT_PRIVATE_KEY', 'must be a JWK in JSON, not valid JSON');
  }
}

/** The local development signing key (Ed25519, for tokens); `setting` as for `localKey`. */
export async function localPrivateJwk(dataDir: string, setting: string): Promise<JWK> {
  return localKey(dataDir, 'signing-key.local-dev.jwk.json', setting, async () => {
    const { privateKey } = await generateKeyPair(JWT_ALG, { crv: 'Ed25519', extractable: true });
    return { ...(await exportJWK(privateKey)), kid: `local-${randomUUID().slice(0, 8)}` };
  });
}

/**
 * A key kept in `DATA_DIR/keys/<name>` for local development. Whichever local process starts
 * first makes it; the others read it. Where it cannot be kept (an image's read-only filesystem),
 * the setting that was left out is named: `setting`.
 */
export async function localKey<T>(dataDir: string, name: string, setting: string, make: () => Promise<T>): Promise<T> {
  const dir = join(dataDir, 'keys');
  const file = join(dir, name);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ConfigError(setting, `is not set, and the local development key ${file} cannot be read (${code ?? String(err)})`);
  }
  const key = await make();
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(temp, JSON.stringify(key), { mode: 0o600 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError(setting, `is not set, and no local development key can be kept in ${dir} (${code}): set ${setting} (make keys prints it)`);
  }
  try {
    await link(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await rm(temp, { force: true });
  }
  return JSON.parse(await readFile(file, 'utf8')) as T;
}
