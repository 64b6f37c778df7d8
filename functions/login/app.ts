import type { JSONWebKeySet } from 'jose';
import { functionApp } from '../../shared/app';
import type { Logger } from '../../shared/log';
import { Problem } from '../../shared/problem';
import { requestAddress } from './client-address';
import { hashSlots } from './hash-slots';
import { verifyNobody, verifyPassword } from './password';
import { defaultThrottlePolicy, loginThrottle, type ThrottlePolicy } from './throttle';
import type { IssueToken } from './tokens';
import type { UserStore } from './users/store';

export interface LoginDeps {
  users: UserStore;
  issueToken: IssueToken;
  publicKeys: JSONWebKeySet;
  log: Logger;
  throttle?: ThrottlePolicy;
  /** Password hashes this process runs at once; more are answered 503 without hashing. */
  maxConcurrentHashes?: number;
  /** Whom a failed login is counted against, besides the account (see client-address.ts). */
  clientAddress?: (c: { req: { header(name: string): string | undefined }; env: unknown }) => string;
  now?: () => number;
  passwords?: { verify: typeof verifyPassword; verifyNobody: typeof verifyNobody };
  /** The web page's origins (CORS). */
  corsOrigins?: readonly string[];
}

export function createApp({
  users,
  issueToken,
  publicKeys,
  log,
  throttle: policy = defaultThrottlePolicy,
  maxConcurrentHashes = 4,
  clientAddress = requestAddress('none'),
  now = Date.now,
  passwords = { verify: verifyPassword, verifyNobody },
  corsOrigins,
}: LoginDeps) {
  const app = functionApp(log, { corsOrigins });
  const throttle = loginThrottle(users, policy, now);
  const slots = hashSlots(maxConcurrentHashes);

  /** HTTP Basic (email:password) in, a JWT out. */
  app.post('/login', async (c) => {
    const credentials = parseBasic(c.req.header('authorization'));
    const address = clientAddress(c);
    // Before any hashing: a locked account or address costs a read, not a scrypt.
    const wait = await throttle.retryAfter(credentials.email, address);
    if (wait > 0) throw tooManyFailures(wait);

    const user = await users.findByEmail(credentials.email);
    const release = slots.tryAcquire();
    if (!release) throw busy();
    let valid: boolean;
    try {
      valid = user ? await passwords.verify(credentials.password, user.passwordHash) : await passwords.verifyNobody(credentials.password);
    } finally {
      release();
    }
    if (!user || !valid) {
      await throttle.failed(credentials.email, address);
      throw unauthorized('The email or password is wrong.');
    }
    await throttle.succeeded(credentials.email);

    const issued = await issueToken({ id: user.id, email: user.email, role: user.role });
    c.header('cache-control', 'no-store');
    // Clients of the original system read the bare token as text.
    if (prefersText(c.req.header('accept'))) return c.text(issued.token);
    return c.json(issued);
  });

  app.get('/.well-known/jwks.json', (c) => {
    c.header('cache-control', 'public, max-age=300');
    return c.json(publicKeys);
  });

  return app;
}

function parseBasic(header: string | undefined): { email: string; password: string } {
  if (!header) throw unauthorized('Credentials are required (HTTP Basic, email:password).');
  const match = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  if (colon < 1 || colon === decoded.length - 1) throw unauthorized('The Authorization header is not valid HTTP Basic email:password.');
  return { email: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function unauthorized(detail: string): Problem {
  return new Problem({
    status: 401,
    title: 'Unauthorized',
    detail,
    headers: { 'www-authenticate': 'Basic realm="earshot", charset="UTF-8"' },
  });
}

/** The same answer for a locked account, a locked address, known or unknown email. */
function tooManyFailures(retryAfterSeconds: number): Problem {
  return new Problem({
    status: 429,
    title: 'Too Many Requests',
    detail: `Too many failed logins for this account or from this address. Try again in ${retryAfterSeconds} s.`,
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

function busy(): Problem {
  return new Problem({
    status: 503,
    title: 'Service Unavailable',
    detail: 'Too many logins are being checked at this moment. Try again in a second.',
    headers: { 'retry-after': '1' },
  });
}

function prefersText(accept: string | undefined): boolean {
  return !!accept && accept.includes('text/plain') && !accept.includes('application/json');
}
