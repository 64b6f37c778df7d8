/**
 * Signed download links: a URL that opens one MP3 in any browser, without a login, until it
 * expires. The signature is a compact JWS, an HS256 JWT: `kid` in its header, the MP3's id as
 * `sub`, a fixed `aud`, `exp`. The keys are the deployment's (a JWKS of `oct` keys): the first
 * signs, all verify, so a key is rotated by putting a new one first and dropping the old one
 * once the links it signed have expired.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { errors, importJWK, jwtVerify, SignJWT, type JSONWebKeySet, type JWK } from 'jose';
import { ConfigError } from './config';
import { localKey } from './keys';

export const LINK_ALG = 'HS256';
/** Names what the token is for, so no other token signed with these keys passes for a link. */
const LINK_AUDIENCE = 'earshot:download-link';
/** The query parameter that carries the signature. */
export const LINK_PARAM = 'sig';
/** A signature this long is not one of ours; no key is tried on it. */
const MAX_TOKEN_LENGTH = 1024;
const SETTING = 'LINK_SIGNING_KEYS';

export interface SignedLink {
  token: string;
  expiresAt: Date;
}

export type LinkCheck =
  | { ok: true }
  /** Not signed by a key of this deployment (changed, made up, or its key retired), or not a link token. */
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'expired'; expiredAt: Date }
  | { ok: false; reason: 'other-mp3' };

export interface Links {
  sign(id: string, now?: Date): Promise<SignedLink>;
  verify(token: string, id: string, now?: Date): Promise<LinkCheck>;
}

/** A link's expiry as people read it, in mail and in problem details: `2026-03-08 12:00 UTC`. */
export const shownTime = (date: Date): string => `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** The path of the download route with the signature, relative to where download is served. */
export const signedPath = (id: string, token: string): string => `/download/${encodeURIComponent(id)}?${LINK_PARAM}=${token}`;

export async function linkSigner(keySet: JSONWebKeySet, ttlSeconds: number): Promise<Links> {
  const keys = new Map<string, CryptoKey | Uint8Array>();
  for (const jwk of keySet.keys) keys.set(jwk.kid!, await importJWK(jwk, LINK_ALG));
  const signingKid = keySet.keys[0]!.kid!;
  const signingKey = keys.get(signingKid)!;

  return {
    async sign(id, now = new Date()) {
      const exp = Math.floor(now.getTime() / 1000) + ttlSeconds;
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: LINK_ALG, kid: signingKid })
        .setSubject(id)
        .setAudience(LINK_AUDIENCE)
        .setExpirationTime(exp)
        .sign(signingKey);
      return { token, expiresAt: new Date(exp * 1000) };
    },

    async verify(token, id, now = new Date()) {
      if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'invalid' };
      const keyFor = ({ kid }: { kid?: string }) => {
        const key = kid === undefined ? undefined : keys.get(kid);
        if (!key) throw new Error('no such key');
        return key;
      };
      try {
        const { payload } = await jwtVerify(token, keyFor, { algorithms: [LINK_ALG], audience: LINK_AUDIENCE, currentDate: now, requiredClaims: ['sub', 'exp'] });
        return payload.sub === id ? { ok: true } : { ok: false, reason: 'other-mp3' };
      } catch (err) {
        // jose checks `exp` after the signature and the audience: an expired link is one of ours.
        if (err instanceof errors.JWTExpired && typeof err.payload.exp === 'number') {
          return err.payload.sub === id ? { ok: false, reason: 'expired', expiredAt: new Date(err.payload.exp * 1000) } : { ok: false, reason: 'other-mp3' };
        }
        return { ok: false, reason: 'invalid' };
      }
    },
  };
}

/** A new link key: 256 random bits, as HS256 wants at least. */
export function generateLinkKey(kid = `earshot-${randomUUID().slice(0, 8)}`): JWK {
  return { kty: 'oct', kid, alg: LINK_ALG, k: randomBytes(32).toString('base64url') };
}

/**
 * The key set from `LINK_SIGNING_KEYS` (a JWKS of `oct` keys, each with a `kid`; the first
 * signs), or, for local development, one generated into the data dir on first use.
 */
export async function loadLinkKeys(keySetJson: string | undefined, dataDir: string): Promise<JSONWebKeySet> {
  if (!keySetJson) return localKey(dataDir, 'link-keys.local-dev.jwks.json', SETTING, async () => ({ keys: [generateLinkKey(`local-${randomUUID().slice(0, 8)}`)] }));
  let set: unknown;
  try {
    set = JSON.parse(keySetJson);
  } catch {
    throw new ConfigError(SETTING, 'must be a JSON Web Key Set ({"keys": [...]}), not valid JSON');
  }
  const keys = (set as JSONWebKeySet | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError(SETTING, 'must be a JSON Web Key Set ({"keys": [...]}) with at least one key');
  const kids = new Set<string>();
  for (const key of keys) {
    if (key?.kty !== 'oct' || typeof key.k !== 'string' || Buffer.from(key.k, 'base64url').length < 32) {
      throw new ConfigError(SETTING, 'must hold secret keys (kty "oct") of at least 256 bits ("k", base64url): make keys prints one');
    }
    if (typeof key.kid !== 'string' || key.kid === '' || kids.has(key.kid)) throw new ConfigError(SETTING, 'must give each key its own "kid" (key id), used for rotation');
    if (key.alg !== undefined && key.alg !== LINK_ALG) throw new ConfigError(SETTING, `keys are for ${LINK_ALG}, not ${key.alg}`);
    kids.add(key.kid);
  }
  return set as JSONWebKeySet;
}
