import type { MiddlewareHandler } from 'hono';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { JWT_ALG } from './keys';
import { Problem } from './problem';

export type Role = 'user' | 'admin';

/** What a verified token says about its holder. */
export interface User {
  id: string;
  email: string;
  role: Role;
}

export interface TokenAudience {
  issuer: string;
  audience: string;
}

export type VerifyToken = (token: string) => Promise<User>;

/**
 * Verifies EdDSA tokens against the key set. A token verified once is remembered, by its exact
 * text (signature included), until it expires: a client polling a job with the same token pays
 * for one signature check, not one per request. The key set is fixed for the process's life.
 */
export function tokenVerifier(keys: JSONWebKeySet, { issuer, audience }: TokenAudience, { cacheSize = 10_000 } = {}): VerifyToken {
  const keySet = createLocalJWKSet(keys);
  const verified = new Map<string, { user: User; expiresAt: number }>();
  return async (token) => {
    const hit = verified.get(token);
    if (hit && hit.expiresAt > Date.now()) return hit.user;
    verified.delete(token);
    const { payload } = await jwtVerify(token, keySet, { issuer, audience, algorithms: [JWT_ALG], requiredClaims: ['exp', 'sub'] });
    const { sub, email, role } = payload;
    if (typeof sub !== 'string' || typeof email !== 'string' || (role !== 'user' && role !== 'admin')) {
      throw new Error('token lacks sub, email or role');
    }
    const user: User = { id: sub, email, role };
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!); // the oldest
    verified.set(token, { user, expiresAt: payload.exp! * 1000 });
    return user;
  };
}

export interface AuthEnv {
  Variables: { user: User };
}

/** Bearer authentication (RFC 6750): 401 with a `WWW-Authenticate` challenge on any failure. */
export function bearerAuth(verify: VerifyToken): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    const match = header?.match(/^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)\s*$/i);
    if (!match?.[1]) {
      throw unauthorized(header ? 'The Authorization header is not a Bearer token.' : 'A Bearer token is required.', !header);
    }
    try {
      c.set('user', await verify(match[1]));
    } catch {
      throw unauthorized('The token is invalid or has expired.', false);
    }
    await next();
  };
}

function unauthorized(detail: string, missing: boolean): Problem {
  const challenge = missing ? 'Bearer realm="earshot"' : 'Bearer realm="earshot", error="invalid_token"';
  return new Problem({ status: 401, title: 'Unauthorized', detail, headers: { 'www-authenticate': challenge } });
}
