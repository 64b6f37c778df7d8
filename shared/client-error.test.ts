import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerClientError } from './client-error';
import { memoryLogger } from './log';

describe('what Node refuses before a request reaches the app', () => {
  const log = memoryLogger();
  let server: Server;
  let port: number;

  /** Writes `raw` (leaving the connection open) and gives back everything the server sent until it closed. */
  const exchange = (raw: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(raw));
      let text = '';
      socket.setEncoding('utf8').on('data', (chunk) => (text += chunk));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
  const parse = (text: string) => {
    const [head, body] = text.split('\r\n\r\n') as [string, string];
    return { statusLine: head.split('\r\n')[0], head, problem: JSON.parse(body) as Record<string, unknown> };
  };

  beforeAll(async () => {
    server = createServer({ requestTimeout: 500, connectionsCheckingInterval: 50 }, (_req, res) => res.end('ok'));
    server.on('clientError', answerClientError(log));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it.each([
    ['a bad request line', 'NOT HTTP\r\n\r\n', 400, 'Bad Request'],
    ['headers too large', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'Request Header Fields Too Large'],
    ['a header with a bare CR', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n', 400, 'Bad Request'],
    ['a request that never finishes arriving', 'GET / HTTP/1.1\r\nHost: x\r\n', 408, 'Request Timeout'],
  ])('answers %s as problem+json and closes', async (_what, raw, status, title) => {
    const { statusLine, head, problem } = parse(await exchange(raw));
    expect(statusLine).toBe(`HTTP/1.1 ${status} ${title}`);
    expect(head).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/);
    expect(head).toMatch(/\r\nx-content-type-options: nosniff\r\n/);
    expect(head).toMatch(/\r\nconnection: close(\r\n|$)/);
    expect(problem).toMatchObject({ type: 'about:blank', status, title, detail: expect.any(String) });
    expect(log.lines.some((line) => line.msg === 'client error' && line.status === status)).toBe(true);
  });

  it('answers a good request on the same server as before', async () => {
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('ok');
  });
});
