/**
 * B6: requests per second of two functions, each a process pinned to one core, against a bare
 * node:http server on the same core doing the least the same answer needs, runs interleaved
 * (bare, function, bare, function …), medians compared:
 * - login: against a server that runs the same scrypt per request and answers a fixed JSON, at
 *   login's own hash parallelism (its LOGIN_MAX_CONCURRENT_HASHES, 4: more are answered 503).
 * - JWT-verified `GET /jobs/:id`: against a server answering the same bytes, at concurrency 16;
 *   `GET /healthz` of the same process in the same rounds tells the base app's share (request
 *   id, log line, headers) from the token check's, the job read's and the view's.
 * The CPU time each process spent per request (all its threads, from /proc) is reported beside
 * the rates: unlike a rate it hardly moves when other work shares the machine.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { defaultParams, hashPassword } from '../functions/login/password';
import { tokenIssuer } from '../functions/login/tokens';
import { SqliteUserStore } from '../functions/login/users/sqlite';
import { loadSigningKey } from '../shared/keys';
import { openSqlite } from '../shared/sqlite';
import { openStores } from '../shared/stores';
import { startBundle } from '../test/processes';
import { median, type Row } from './measure';

/** login's LOGIN_MAX_CONCURRENT_HASHES (its default, set here too): past it a login is refused (503), not queued. */
const hashSlots = 4;

/** Pins a process (all its threads) to one core, where `taskset` exists; the load comes from the other. */
function pin(pid: number, core = 1): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** User + system CPU seconds of a process, all threads; NaN where there is no /proc. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ, 100 on Linux
  } catch {
    return NaN;
  }
}

interface Load {
  rate: number;
  /** CPU µs the server spent per answered request. */
  cpuUs: number;
  failed: number;
  total: number;
}

/** GETs for `seconds`: requests per second, and how many failed: reported, not thrown, so a loaded machine still gets its numbers. */
async function load(url: string, pid: number, seconds: number, init: { connections: number; headers: Record<string, string> }): Promise<Load> {
  const cpuBefore = cpuSeconds(pid);
  const result = await autocannon({ url, connections: init.connections, duration: seconds, headers: init.headers });
  const cpu = cpuSeconds(pid) - cpuBefore;
  if (result['2xx'] === 0) throw new Error(`${url}: no request succeeded (${result.non2xx} non-2xx answers, ${result.errors} errors)`);
  const failed = result.non2xx + result.errors + result.timeouts;
  return { rate: result['2xx'] / result.duration, cpuUs: (cpu * 1e6) / (result['2xx'] + result.non2xx), failed, total: result['2xx'] + failed };
}

/**
 * `requests` POSTs from `connections` keep-alive clients, each waiting for its answer; timed
 * here, to the last answer (autocannon's `amount` ends on its once-a-second tick: a run of 4 s
 * that ends just past one is counted 5).
 */
async function posts(url: string, pid: number, requests: number, { connections, headers }: { connections: number; headers: Record<string, string> }): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const statuses: number[] = [];
  let next = 0;
  const post = () =>
    new Promise<void>((resolve) => {
      const req = request(url, { method: 'POST', agent, headers, timeout: 120_000 }, (res) => {
        res.resume().on('end', () => {
          statuses.push(res.statusCode ?? 0);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', () => {
        statuses.push(0);
        resolve();
      });
      req.end();
    });
  const cpuBefore = cpuSeconds(pid);
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next++ < requests) await post();
  }));
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(pid) - cpuBefore;
  agent.destroy();
  const ok = statuses.filter((status) => status >= 200 && status < 300).length;
  if (ok === 0) throw new Error(`${url}: no request succeeded (${statuses.join(', ')})`);
  return { rate: ok / seconds, cpuUs: (cpu * 1e6) / statuses.filter(Boolean).length, failed: requests - ok, total: requests };
}

/**
 * A node:http server in a process of its own that answers every request with `body` as JSON,
 * after one scrypt of `password` with `scrypt`'s parameters when given (login's own call).
 */
async function bareServer(body: string, scrypt?: { password: string; N: number; r: number; p: number }): Promise<{ url: string; child: ChildProcess }> {
  const code = `const { scrypt, randomBytes } = require('node:crypto');
const { body, hash } = JSON.parse(process.env.BARE);
const salt = randomBytes(16);
const answer = (r) => { r.writeHead(200, { 'content-type': 'application/json' }); r.end(body); };
const s = require('node:http').createServer((q, r) => {
  q.resume();
  if (!hash) return answer(r);
  scrypt(hash.password, salt, 32, { N: hash.N, r: hash.r, p: hash.p, maxmem: 256 * hash.N * hash.r + 1024 * 1024 }, (err) => (err ? r.writeHead(500).end() : answer(r)));
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BARE: JSON.stringify({ body, hash: scrypt }) } });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { url: `http://127.0.0.1:${line}`, child };
}

/** `runs` rounds of each side in turn (A B … A B …); per side the median rate and CPU per request. */
async function rounds<S extends (() => Promise<Load>)[]>(runs: number, sides: [...S]): Promise<{ [K in keyof S]: Load }> {
  const loads: Load[][] = sides.map(() => []);
  for (let i = 0; i < runs; i++) for (const [s, side] of sides.entries()) loads[s]!.push(await side());
  const medians = loads.map((l) => ({ rate: median(l.map((x) => x.rate)), cpuUs: median(l.map((x) => x.cpuUs)), failed: l.reduce((n, x) => n + x.failed, 0), total: l.reduce((n, x) => n + x.total, 0) }));
  return medians as { [K in keyof S]: Load };
}

const cpuNote = (subject: Load, baseline: Load, within?: Load) =>
  Number.isFinite(subject.cpuUs) && Number.isFinite(baseline.cpuUs)
    ? `CPU per request ${fmtUs(subject.cpuUs)}${within ? ` (GET /healthz, same process: ${fmtUs(within.cpuUs)})` : ''} vs ${fmtUs(baseline.cpuUs)}`
    : undefined;
const fmtUs = (us: number) => (us >= 10_000 ? `${(us / 1000).toFixed(0)} ms` : `${us.toFixed(0)} µs`);
const failures = (l: Load) => (l.failed ? `${l.failed} of ${l.total} requests failed or timed out` : undefined);
const joined = (...parts: (string | undefined)[]) => parts.filter(Boolean).join('; ') || undefined;

/** `seconds`: each GET run; `runs`: of each side, interleaved. */
export async function benchRequests({ seconds, runs = 1 }: { seconds: number; runs?: number }): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-requests-'));
  const children: ChildProcess[] = [];
  try {
    const password = 'bench password';
    const users = new SqliteUserStore(await openSqlite(join(dir, 'users.db')));
    const user = await users.create({ email: 'bench@example.com', passwordHash: await hashPassword(password), role: 'user' });
    await users.close();
    const stores = await openStores(pathToFileURL(join(dir, 'store')));
    await stores.jobs.create({ id: 'bench-job', owner: user.id, filename: 'bench.mp4' });
    await stores.close();
    const key = await loadSigningKey(undefined, dir);
    const token = (await tokenIssuer(key, { issuer: 'earshot', audience: 'earshot' }, 3600)({ id: user.id, email: user.email, role: 'user' })).token;

    const login = await startBundle('login', { DATA_DIR: dir, LOGIN_MAX_CONCURRENT_HASHES: String(hashSlots) });
    const download = await startBundle('download', { DATA_DIR: dir });
    children.push(login.child, download.child);
    const pinned = pin(login.child.pid!) && pin(download.child.pid!);
    const core = pinned ? 'one core' : 'unpinned (no taskset)';

    // Logins are slow by design (about 0.2 s of CPU each): a fixed number per run, not a duration.
    const basic = { authorization: `Basic ${Buffer.from(`bench@example.com:${password}`).toString('base64')}` };
    const logins = hashSlots * Math.max(2, Math.round(seconds));
    const loginAnswer = await (await fetch(`${login.url}/login`, { method: 'POST', headers: basic })).text();
    const bareLogin = await bareServer(loginAnswer, { password, ...defaultParams });
    children.push(bareLogin.child);
    pin(bareLogin.child.pid!);
    const [bareLogins, realLogins] = await rounds(runs, [
      () => posts(bareLogin.url, bareLogin.child.pid!, logins, { connections: hashSlots, headers: basic }),
      () => posts(`${login.url}/login`, login.child.pid!, logins, { connections: hashSlots, headers: basic }),
    ]);

    const auth = { authorization: `Bearer ${token}` };
    const jobAnswer = await (await fetch(`${download.url}/jobs/bench-job`, { headers: auth })).text();
    const bareJob = await bareServer(jobAnswer);
    children.push(bareJob.child);
    pin(bareJob.child.pid!);
    type Side = (seconds: number) => Promise<Load>;
    const get = (url: string, pid: number): Side => (duration) => load(url, pid, duration, { connections: 16, headers: auth });
    const sides: [Side, Side, Side] = [
      get(`${bareJob.url}/jobs/bench-job`, bareJob.child.pid!),
      get(`${download.url}/jobs/bench-job`, download.child.pid!),
      // The same process's cheapest answer: everything but the token check, the job read and its view.
      get(`${download.url}/healthz`, download.child.pid!),
    ];
    for (const side of sides) await side(1); // warm (JIT), not counted
    const [bareJobs, realJobs, healthz] = await rounds(runs, [() => sides[0](seconds), () => sides[1](seconds), () => sides[2](seconds)]);

    const loginRatio = realLogins.rate / bareLogins.rate;
    const jobRatio = realJobs.rate / bareJobs.rate;
    return [
      {
        id: 'B6',
        measure: `login (scrypt N=2^14 r=8 p=5), concurrency ${hashSlots} (its hash slots), ${core}`,
        value: realLogins.rate,
        unit: 'req/s',
        baseline: { name: 'bare node:http, same scrypt', value: bareLogins.rate },
        ratio: loginRatio,
        // Besides the scrypt (about 0.2 s of CPU) a login reads and writes SQLite and signs a JWT: well under 1 %.
        target: '≥ 0.9×',
        met: loginRatio >= 0.9 && !realLogins.failed,
        note: joined(failures(realLogins), cpuNote(realLogins, bareLogins)),
      },
      {
        id: 'B6',
        measure: `JWT-verified GET /jobs/:id, concurrency 16, ${core}`,
        value: realJobs.rate,
        unit: 'req/s',
        baseline: { name: 'bare node:http, same JSON', value: bareJobs.rate },
        ratio: jobRatio,
        // The bare server does the least an answer needs; this one also reads the job from the
        // store, writes a log line, checks a token and routes. Measured apart on this machine, a
        // prepared SQLite read inside a server costs 1–2.5× a bare answer, the log line about 1×,
        // token and routing about 0.5×: some 5× the bare answer's work.
        target: '≥ 0.2×',
        met: jobRatio >= 0.2 && !realJobs.failed,
        note: joined(failures(realJobs), cpuNote(realJobs, bareJobs, healthz)),
      },
    ];
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(children.map((child) => (child.exitCode === null && child.signalCode === null ? once(child, 'exit') : undefined)));
    await rm(dir, { recursive: true, force: true });
  }
}
