import type { JSONWebKeySet } from 'jose';
import { functionApp } from '../../shared/app';
import type { Logger } from '../../shared/log';
import { Problem } from '../../shared/problem';
import { verifyNobody, verifyPassword } from './password';
import type { IssueToken } from './tokens';
import type { UserStore } from './users/store';

export interface LoginDeps {
  users: UserStore;
  issueToken: IssueToken;
  publicKeys: JSONWebKeySet;
  log: Logger;
}

export function createApp({ users, issueToken, publicKeys, log }: LoginDeps) {
  const app = functionApp(log);

  /** HTTP Basic (email:password) in, a JWT out. */
  app.post('/login', async (c) => {
    const credentials = parseBasic(c.req.header('authorization'));
    const user = await users.findByEmail(credentials.email);
    const valid = user
      ? await verifyPassword(credentials.password, user.passwordHash)
      : await verifyNobody(credentials.password);
    if (!user || !valid) throw unauthorized('The email or password is wrong.');

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

function prefersText(accept: string | undefined): boolean {
  return !!accept && accept.includes('text/plain') && !accept.includes('application/json');
}
