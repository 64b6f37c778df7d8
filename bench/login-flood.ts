/**
 * B9: a legitimate user's login latency while 16 parallel clients flood login with wrong
 * passwords, against the same user's logins without the flood, in one login process.
 * Each flooding client has an address of its own (X-Forwarded-For, TRUST_PROXY=private, as
 * behind Knative) and sprays a new email at every guess, so that only the per-address count
 * and the hash bound stand in its way. The user follows Retry-After on a 503, as a client
 * should; a login's latency is from its first try to its 200.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword } from '../functions/login/password';
import { SqliteUserStore } from '../functions/login/users/sqlite';
import { openSqlite } from '../shared/sqlite';
import { startBundle } from '../test/processes';
import { median, type Row } from './measure';

const basic = (email: string, password: string) => `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const p95 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil(values.length * 0.95) - 1)]!;

export async function benchLoginFlood({ logins, clients = 16 }: { logins: number; clients?: number }): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-flood-'));
  try {
    const users = new SqliteUserStore(await openSqlite(join(dir, 'users.db')));
    await users.create({ email: 'user@example.com', passwordHash: await hashPassword('the right password'), role: 'user' });
    await users.close();
    const login = await startBundle('login', { DATA_DIR: dir, TRUST_PROXY: 'private' });
    const post = (authorization: string, address: string) =>
      fetch(`${login.url}/login`, { method: 'POST', headers: { authorization, 'x-forwarded-for': `${address}, 10.0.0.1` } });

    /** The user's logins one after another, each timed from its first try to its 200. */
    const userLogins = async () => {
      const latencies: number[] = [];
      for (let i = 0; i < logins; i++) {
        const started = performance.now();
        for (;;) {
          const res = await post(basic('user@example.com', 'the right password'), '198.51.100.7');
          await res.arrayBuffer();
          if (res.status === 200) break;
          if (res.status !== 503 && res.status !== 429) throw new Error(`the user's login answered ${res.status}`);
          await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000);
        }
        latencies.push(performance.now() - started);
      }
      return latencies;
    };

    try {
      const baseline = await userLogins();
      let flooding = true;
      const answered: Record<number, number> = {};
      const flood = Array.from({ length: clients }, async (_, client) => {
        for (let guess = 0; flooding; guess++) {
          const res = await post(basic(`victim-${client}-${guess}@example.com`, `guess ${guess}`), `203.0.113.${client + 1}`);
          await res.arrayBuffer();
          answered[res.status] = (answered[res.status] ?? 0) + 1;
        }
      });
      const during = await userLogins().finally(() => (flooding = false));
      await Promise.all(flood);
      const note = `flood answered ${Object.entries(answered).map(([status, n]) => `${n}×${status}`).join(', ')}`;
      const row = (stat: string, of: (xs: number[]) => number): Row => {
        const value = of(during) / 1000;
        const base = of(baseline) / 1000;
        return {
          id: 'B9',
          measure: `login of a legitimate user during a wrong-password flood from ${clients} clients, ${stat} of ${logins}`,
          value,
          unit: 's',
          baseline: { name: 'no flood', value: base },
          ratio: value / base,
          target: '< 2 s',
          met: value < 2,
          note,
        };
      };
      return [row('median', median), row('p95', p95)];
    } finally {
      await login.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
