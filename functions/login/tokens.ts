import { SignJWT } from 'jose';
import type { TokenAudience, User } from '../../shared/auth';
import { JWT_ALG, type SigningKey } from '../../shared/keys';

export type IssueToken = (user: User) => Promise<{ token: string; expiresAt: string }>;

export function tokenIssuer(key: SigningKey, { issuer, audience }: TokenAudience, ttlSeconds: number): IssueToken {
  return async (user) => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ email: user.email, role: user.role })
      .setProtectedHeader({ alg: JWT_ALG, kid: key.kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(user.id)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .sign(key.privateKey);
    return { token, expiresAt: new Date((now + ttlSeconds) * 1000).toISOString() };
  };
}
