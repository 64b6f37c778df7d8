/**
 * A local stand-in for SendGrid's v3 `POST /v3/mail/send`, speaking its protocol: Bearer API
 * key, the JSON body, 202 with `X-Message-Id` on success, and SendGrid's `{errors: [...]}`
 * bodies for failures. The only stand-in earshot's tests use: SendGrid is outside this machine.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedMail {
  authorization: string | undefined;
  body: {
    personalizations: { to: { email: string }[] }[];
    from: { email: string; name?: string };
    subject: string;
    content: { type: string; value: string }[];
    custom_args?: Record<string, string>;
  };
  /** What the stand-in answered: 202 is a mail SendGrid would send. */
  status: number;
}

export interface SendgridStandin {
  url: string;
  received: ReceivedMail[];
  /** Status codes to answer the next requests with, in order; 202 once they run out. */
  script: number[];
  /** While set, the status every request is answered with (SendGrid down for as long as it takes), before the script. */
  outage?: number;
  close(): Promise<void>;
}

export async function startSendgridStandin(apiKey: string): Promise<SendgridStandin> {
  const received: ReceivedMail[] = [];
  const script: number[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const reply = (status: number, body?: object, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...(body && { 'content-type': 'application/json' }), ...headers });
      res.end(body ? JSON.stringify(body) : undefined);
    };
    if (req.method !== 'POST' || req.url !== '/v3/mail/send') return reply(404, { errors: [{ message: 'not found' }] });
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return reply(401, { errors: [{ message: 'The provided authorization grant is invalid, expired, or revoked', field: null, help: null }] });
    }
    let body: ReceivedMail['body'];
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(400, { errors: [{ message: 'Bad Request', field: null, help: null }] });
    }
    const status = standin.outage ?? script.shift() ?? 202;
    received.push({ authorization: req.headers.authorization, body, status });
    if (status === 202) return reply(202, undefined, { 'x-message-id': `standin-${received.length}` });
    if (status === 429) return reply(429, { errors: [{ message: 'too many requests', field: null, help: null }] });
    if (status === 400) return reply(400, { errors: [{ message: 'The from email does not contain a valid address.', field: 'from.email', help: null }] });
    return reply(status, { errors: [{ message: 'internal error', field: null, help: null }] });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const standin: SendgridStandin = {
    url: `http://127.0.0.1:${port}`,
    received,
    script,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return standin;
}
