/**
 * B6: login and JWT-verified `GET /jobs/:id` requests per second at concurrency 16, each function
 * a process on one core; the second against a bare node:http server answering the same bytes.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { hashPassword } from '../functions/login/password';
import { tokenIssuer } from '../functions/login/tokens';
import { SqliteUserStore } from '../functions/login/users/sqlite';
import { loadSigningKey } from '../shared/keys';
import { openSqlite } from '../shared/sqlite';
import { openStores } from '../shared/stores';
import { startBundle } from '../test/processes';
import type { Row } from './measure';

/** Pins a process (all its threads) to one core, where `taskset` exists; the load comes from the other. */
function pin(pid: number, core = 1): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Requests per second, and how many failed: reported, not thrown, so a loaded machine still gets its numbers. */
async function load(url: string, amount: { seconds: number } | { requests: number }, init: { method?: string; headers: Record<string, string> }) {
  const result = await autocannon({
    url,
    connections: 16,
    // 16 logins queue behind one core's scrypt: on a busy machine the last waits many seconds.
    timeout: 120,
    ...('seconds' in amount ? { duration: amount.seconds } : { amount: amount.requests }),
    method: (init.method ?? 'GET') as 'GET',
    headers: init.headers,
  });
  if (result['2xx'] === 0) throw new Error(`${url}: no request succeeded (${result.non2xx} non-2xx answers, ${result.errors} errors)`);
  const failed = result.non2xx + result.errors;
  return { rate: result['2xx'] / result.duration, note: failed ? `${failed} of ${result['2xx'] + failed} requests failed or timed out` : undefined };
}

/** A node:http server in a process of its own that answers every request with `body` as JSON. */
async function bareServer(body: string): Promise<{ url: string; child: ChildProcess }> {
  const code = `const s = require('node:http').createServer((q, r) => { q.resume(); r.writeHead(200, { 'content-type': 'application/json' }); r.end(${JSON.stringify(body)}); });
s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { url: `http://127.0.0.1:${line}/jobs/bench-job`, child };
}

export async function benchRequests({ seconds }: { seconds: number }): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-requests-'));
  try {
    const users = new SqliteUserStore(await openSqlite(join(dir, 'users.db')));
    const user = await users.create({ email: 'bench@example.com', passwordHash: await hashPassword('bench password'), role: 'user' });
    await users.close();
    const stores = await openStores(pathToFileURL(join(dir, 'store')));
    await stores.jobs.create({ id: 'bench-job', owner: user.id, filename: 'bench.mp4' });
    await stores.close();
    const key = await loadSigningKey(undefined, dir);
    const token = (await tokenIssuer(key, { issuer: 'earshot', audience: 'earshot' }, 3600)({ id: user.id, email: user.email, role: 'user' })).token;

    const login = await startBundle('login', { DATA_DIR: dir });
    const download = await startBundle('download', { DATA_DIR: dir });
    const pinned = pin(login.child.pid!) && pin(download.child.pid!);
    const core = pinned ? 'one core' : 'unpinned (no taskset)';
    try {
      const basic = `Basic ${Buffer.from('bench@example.com:bench password').toString('base64')}`;
      // Logins are slow by design: a fixed number of them, not a duration.
      const logins = await load(`${login.url}/login`, { requests: 16 * Math.max(1, Math.round(seconds / 2)) }, { method: 'POST', headers: { authorization: basic } });
      const auth = { authorization: `Bearer ${token}` };
      // The baseline: a bare node:http server answering download's own bytes, on the same core.
      const answer = await (await fetch(`${download.url}/jobs/bench-job`, { headers: auth })).text();
      const bare = await bareServer(answer);
      const baseline = await (async () => {
        try {
          pin(bare.child.pid!);
          return await load(bare.url, { seconds }, { headers: auth });
        } finally {
          bare.child.kill();
        }
      })();
      const verified = await load(`${download.url}/jobs/bench-job`, { seconds }, { headers: auth });
      const ratio = verified.rate / baseline.rate;
      return [
        { id: 'B6', measure: `login (scrypt), concurrency 16, ${core}`, value: logins.rate, unit: 'req/s', target: '—', met: null, note: logins.note ?? 'one scrypt (16 MiB, N=2^14 r=8 p=5) per login, by design' },
        {
          id: 'B6',
          measure: `JWT-verified GET /jobs/:id, concurrency 16, ${core}`,
          value: verified.rate,
          unit: 'req/s',
          baseline: { name: 'bare node:http, same JSON', value: baseline.rate },
          ratio,
          target: '≥ 0.5×',
          met: ratio >= 0.5 && !verified.note,
          note: verified.note,
        },
      ];
    } finally {
      await Promise.all([login.stop(), download.stop()]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
