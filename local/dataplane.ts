/**
 * `EARSHOT_BROKER=rabbitmq make dev`: the real broker data plane instead of the embedded one.
 * `make services` runs a private RabbitMQ node and builds eventing-rabbitmq's ingress and
 * dispatcher and our rabbitmq-topology (tools/rabbitmq) into .services/bin. Here topology declares,
 * in a vhost of this runtime's own, what eventing-rabbitmq's controller would for the manifests,
 * and prints the processes its Deployments would run; this module runs them and keeps them
 * running: a process that exits is started again after a backoff, as a pod's container would be.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { Logger, Level } from '../shared/log';

export interface DataPlaneOptions {
  /** The checkout whose knative/ and eventing/ topology reads. */
  repo: string;
  dataDir: string;
  /** Where the ingress listens (the Broker's address, given to functions as K_SINK). */
  ingressPort: number;
  /** Where the runtime and the dispatchers reach it (default 127.0.0.1); it listens on every address of its host. */
  ingressHost?: string;
  /** A network namespace (`ip netns`) to run the ingress and dispatchers in: another host, as far as addresses go. */
  netns?: string;
  /** Every Knative Service the Triggers and the Broker deliver to, by name. */
  subscribers: Record<string, string>;
  log: Logger;
  /** Defaults: tools/services.sh's local-development node and .services/bin. */
  amqpUrl?: string;
  managementUrl?: string;
  bin?: string;
  vhost?: string;
}

export interface DataPlane {
  url: string;
  vhost: string;
  /** Messages already in the vhost's queues when it started (a restart finds its durable queues again). */
  pending: number;
  /** The PIDs running now, by process name. */
  pids(): Record<string, number>;
  /** SIGTERM to every process, SIGKILL to those still running a few seconds later. */
  stop(): Promise<void>;
}

/** What topology prints about each process (tools/rabbitmq/main.go). */
interface ProcessSpec {
  name: string;
  command: string;
  env: Record<string, string>;
  localEnv?: Record<string, string>;
}

/** Missing RabbitMQ or binaries: the runtime prints the message and exits. */
export class DataPlaneUnavailable extends Error {}

export const localDefaults = {
  amqpUrl: 'amqp://earshot:earshot-local-dev@127.0.0.1:5673', // tools/services.sh: local development only
  managementUrl: 'http://127.0.0.1:15673',
  bin: '.services/bin',
};

/** One vhost per DATA_DIR: two runtimes never share queues, and a restart finds its own again. */
export const vhostFor = (dataDir: string) => `earshot-dev-${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12)}`;

const stopGraceMs = 3000; // the ingress drains for 45 s on SIGTERM, as in a pod; nobody waits for that here
const readyTimeoutMs = 60_000;
const backoff = { firstMs: 500, maxMs: 30_000, stableMs: 30_000 };

export async function startDataPlane(options: DataPlaneOptions): Promise<DataPlane> {
  const { log, dataDir } = options;
  const amqpUrl = options.amqpUrl ?? localDefaults.amqpUrl;
  const managementUrl = options.managementUrl ?? localDefaults.managementUrl;
  const bin = resolve(options.bin ?? localDefaults.bin);
  const vhost = options.vhost ?? vhostFor(dataDir);
  const ingressHost = options.ingressHost ?? '127.0.0.1';
  const url = `http://${ingressHost}:${options.ingressPort}`;
  const api = managementApi(managementUrl, amqpUrl);

  const missing = ['rabbitmq-topology', 'rabbitmq-ingress', 'rabbitmq-dispatcher'].filter((b) => !existsSync(join(bin, b)));
  if (missing.length > 0) throw new DataPlaneUnavailable(`EARSHOT_BROKER=rabbitmq: ${missing.join(', ')} not in ${bin}: run make services`);
  if (options.netns && !existsSync(join('/run/netns', options.netns))) {
    throw new DataPlaneUnavailable(`EARSHOT_DATAPLANE_NETNS=${options.netns}: no such network namespace (ip netns list)`);
  }
  try {
    await api('/api/overview');
  } catch (err) {
    throw new DataPlaneUnavailable(`EARSHOT_BROKER=rabbitmq: RabbitMQ's management API at ${managementUrl} does not answer (${(err as Error).message}): run make services`);
  }
  await killLeftovers(vhost, log);

  const urls = Object.entries(options.subscribers).flatMap(([name, u]) => ['-url', `${name}=${u.replace('//localhost:', '//127.0.0.1:')}`]);
  let specs: ProcessSpec[];
  try {
    const { stdout } = await promisify(execFile)(join(bin, 'rabbitmq-topology'),
      ['-repo', resolve(options.repo), '-vhost', vhost, '-amqp', amqpUrl, '-management', managementUrl, '-ingress', url, '-bin', bin, ...urls]);
    specs = (JSON.parse(stdout) as { processes: ProcessSpec[] }).processes;
  } catch (err) {
    throw new Error(`rabbitmq-topology failed: ${String((err as { stderr?: string }).stderr || (err as Error).message).trim()}`);
  }
  const queues = (await api(`/api/queues/${encodeURIComponent(vhost)}?columns=messages`).then((res) => res.json(), () => [])) as { messages?: number }[];
  const pending = queues.reduce((sum, q) => sum + (q.messages ?? 0), 0);

  const supervised = specs.map((spec) => supervise(spec, log.child({ fn: spec.name }), options.netns));
  const stop = async () => {
    await Promise.all(supervised.map((s) => s.stop()));
  };
  try {
    await waitFor('the data plane', readyTimeoutMs, async () => {
      return supervised.every((s) => s.ready()) && (await listening(ingressHost, options.ingressPort));
    });
  } catch (err) {
    await stop();
    const waiting = supervised.filter((s) => !s.ready()).map((s) => s.name);
    throw new Error(`${(err as Error).message}${waiting.length ? `; not consuming yet: ${waiting.join(', ')}` : ''}`);
  }
  return {
    url,
    vhost,
    pending,
    pids: () => Object.fromEntries(supervised.flatMap((s) => (s.pid() ? [[s.name, s.pid()!]] : []))),
    stop,
  };
}

/**
 * One process, restarted when it exits (backoff doubling from 0.5 s to 30 s, back to the start once
 * it has run 30 s). Ready: the ingress as soon as it runs (the caller polls its port), a dispatcher
 * once it logs that it consumes. Spawned through setpriv --pdeathsig when there is one, so that a
 * runtime killed with SIGKILL takes its data plane along instead of leaving it consuming. In `netns`,
 * through `ip netns exec`, which execs in place: the process is still the runtime's child.
 */
function supervise(spec: ProcessSpec, log: Logger, netns?: string) {
  const consumer = Boolean(spec.env.QUEUE_NAME);
  let child: ChildProcess | undefined;
  let consuming = false;
  let stopping = false;
  let delay = backoff.firstMs;
  let timer: NodeJS.Timeout | undefined;

  const start = () => {
    const started = Date.now();
    consuming = false;
    const argv = [...(netns ? ['ip', 'netns', 'exec', netns] : []), ...(setpriv ? [setpriv, '--pdeathsig', 'SIGKILL', '--'] : []), spec.command];
    const env = { PATH: process.env.PATH ?? '', ...spec.env, ...spec.localEnv };
    const c = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    for (const stream of [c.stdout!, c.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        const entry = forward(line, log);
        if (entry?.msg === 'starting to process messages') consuming = true;
      });
    }
    c.once('error', (err) => log.error('could not start', { command: spec.command, err }));
    c.once('exit', (code, signal) => {
      if (child === c) child = undefined;
      if (stopping) return;
      if (Date.now() - started > backoff.stableMs) delay = backoff.firstMs;
      log.warn('data-plane process exited; restarting', { process: spec.name, code, signal, restartInMs: delay });
      timer = setTimeout(start, delay);
      delay = Math.min(delay * 2, backoff.maxMs);
    });
  };
  start();

  return {
    name: spec.name,
    ready: () => child !== undefined && (!consumer || consuming),
    pid: () => child?.pid,
    stop: async () => {
      stopping = true;
      clearTimeout(timer);
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((done) => c.once('exit', done));
      c.kill('SIGTERM');
      const kill = setTimeout(() => c.kill('SIGKILL'), stopGraceMs);
      await exited;
      clearTimeout(kill);
    },
  };
}

const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** A JSON line from the Go programs (Knative's zap: severity, message), logged again as ours at its level; other lines as info. */
function forward(line: string, log: Logger): { msg?: string } | undefined {
  if (!line.trim()) return undefined;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    log.info(line);
    return undefined;
  }
  const { severity, level, message, msg, timestamp: _t, ts: _ts, caller: _c, logger: _l, ...fields } = entry;
  const text = String(message ?? msg ?? '');
  const named = String(severity ?? level ?? 'info').toLowerCase();
  const mapped: Level = named === 'debug' || named === 'info' ? named : named.startsWith('warn') ? 'warn' : 'error';
  log[mapped](text, fields);
  return { msg: text };
}

/** Data-plane processes of `vhost` still running (their RABBITMQ_VHOST says whose they are): left by a runtime that was killed. */
export async function dataPlaneProcesses(vhost: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const [cmdline, environ] = await Promise.all([readFile(`/proc/${entry}/cmdline`, 'utf8'), readFile(`/proc/${entry}/environ`, 'utf8')].map((p) => p.catch(() => '')));
    if (/rabbitmq-(ingress|dispatcher)/.test(cmdline!) && environ!.split('\0').includes(`RABBITMQ_VHOST=${vhost}`)) pids.push(Number(entry));
  }
  return pids;
}

/** Those of `vhost` whose runtime is gone (killed where setpriv was missing): their parent is no longer a runtime. */
async function killLeftovers(vhost: string, log: Logger): Promise<void> {
  const killed: number[] = [];
  for (const pid of await dataPlaneProcesses(vhost)) {
    const ppid = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).replace(/^.*\) /s, '').split(' ')[1];
    const parent = await readFile(`/proc/${ppid}/cmdline`, 'utf8').catch(() => '');
    if (parent.includes('local/runtime.ts')) continue; // another runtime's, on the same DATA_DIR
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone already
    }
  }
  if (killed.length > 0) log.warn('killed data-plane processes an earlier runtime left', { vhost, pids: killed });
}

/** RabbitMQ's management API at `base`, as the user of `amqpUrl`: a failed status throws. */
export function managementApi(base = localDefaults.managementUrl, amqpUrl = localDefaults.amqpUrl) {
  const { username, password } = new URL(amqpUrl);
  const authorization = `Basic ${Buffer.from(`${decodeURIComponent(username)}:${decodeURIComponent(password)}`).toString('base64')}`;
  return async (path: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(base.replace(/\/$/, '') + path, { ...init, headers: { authorization }, signal: AbortSignal.timeout(30_000) });
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status}`);
    return res;
  };
}

/** `make services`' node answers, and the data-plane binaries are built (it does both). */
export async function dataPlaneAvailable(): Promise<boolean> {
  const built = ['rabbitmq-topology', 'rabbitmq-ingress', 'rabbitmq-dispatcher'].every((b) => existsSync(join(localDefaults.bin, b)));
  return built && managementApi()('/api/overview').then(() => true, () => false);
}

/** A TCP connection, not a request: the ingress logs a warning for anything but a POST. */
export const listening = (host: string, port: number) =>
  new Promise<boolean>((done) => {
    const socket = connect({ host, port }, () => {
      done(true);
      socket.end();
    });
    socket.once('error', () => done(false));
  });

async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  for (const end = Date.now() + ms; !(await check()); await new Promise((r) => setTimeout(r, 200))) {
    if (Date.now() > end) throw new Error(`${what} did not come up within ${ms / 1000} s`);
  }
}
