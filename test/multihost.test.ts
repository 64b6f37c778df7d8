/**
 * Multi-host, on paper: RabbitMQ, the broker's data plane and the functions each on a host of their
 * own — network namespaces of this machine joined by a bridge, made here and removed after — and
 * the pipeline works when only the addresses change: EARSHOT_HOST, EARSHOT_INGRESS_HOST and the
 * RabbitMQ URLs; EARSHOT_DATAPLANE_NETNS puts the ingress and dispatchers on their host.
 *
 *   the root namespace (the runtime, its functions)   10.231.N.1, on the bridge
 *   earshot-<pid>-rabbitmq (a RabbitMQ node)          10.231.N.2
 *   earshot-<pid>-dataplane (ingress, dispatchers)    10.231.N.3
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataPlaneProcesses, listening, localDefaults } from '../local/dataplane';
import { decodedSeconds, makeVideo } from './media';
import { startRuntime, type Runtime } from './runtime';
import { describeWithService } from './services';
import { tempDir } from './support';

const ip = (...args: string[]) => promisify(execFile)('ip', args, { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The kernel's (or the permissions') answer to `ip netns add`, or undefined when namespaces can be made. */
async function namespacesRefused(): Promise<string | undefined> {
  const probe = `earshot-probe-${process.pid}`;
  try {
    await ip('netns', 'add', probe);
  } catch (err) {
    const { code, stderr } = err as { code?: unknown; stderr?: string };
    if (code === 'ENOENT') throw new Error('ip is missing: apt-get install iproute2'); // this machine's lack, not the kernel's refusal
    return stderr?.trim() || (err as Error).message;
  }
  await ip('netns', 'del', probe);
  return undefined;
}

const rabbitmqAvailable =
  ['rabbitmq-topology', 'rabbitmq-ingress', 'rabbitmq-dispatcher'].every((b) => existsSync(join(localDefaults.bin, b))) &&
  existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server');

const name = 'the pipeline with RabbitMQ, the data plane and the functions in three network namespaces';
const refused = await namespacesRefused();
if (refused) {
  console.warn(`test/multihost.test.ts skipped: the kernel refused network namespaces (ip netns add: ${refused})`);
  describe.skip(`${name} [skipped: the kernel refused network namespaces: ${refused}]`, suite);
} else {
  describeWithService('RabbitMQ (tools/services.sh) and the broker data plane', rabbitmqAvailable, name, suite);
}

function suite() {
  const id = process.pid;
  const netns = { rabbitmq: `earshot-${id}-rabbitmq`, dataPlane: `earshot-${id}-dataplane` };
  const bridge = `esh${id}br`; // interface names: 15 characters at most
  let subnet: string;
  const at = (host: number) => `${subnet}.${host}`;
  let ports: { amqp: number; http: number; dist: number; epmd: number };
  const credentials = 'earshot:earshot-local-dev'; // tools/services.sh: local development only
  let dir: string;
  let nodeEnv: NodeJS.ProcessEnv;
  let rt: Runtime | undefined;
  const undo: (() => Promise<unknown>)[] = []; // what beforeAll made, undone in reverse whatever failed

  beforeAll(async () => {
    dir = await tempDir('multihost-');
    const used = await ip('-4', '-o', 'addr');
    subnet = Array.from({ length: 256 }, (_, i) => `10.231.${(id + i) % 256}`).find((s) => !used.stdout.includes(`${s}.`))!;
    // The node's ports, moved as test/rabbitmq-node.ts moves them, to some free on this namespace's
    // loopback (other suites run nodes there): refused there later, they prove the node is elsewhere.
    for (let offset = 100 + (id % 400); ; offset++) {
      ports = { amqp: 5673 + offset, http: 15673 + offset, dist: 25673 + offset, epmd: 4371 + offset };
      if (!(await Promise.all(Object.values(ports).map((p) => listening('127.0.0.1', p)))).includes(true)) break;
    }

    await ip('link', 'add', bridge, 'type', 'bridge');
    undo.push(() => ip('link', 'del', bridge));
    await ip('addr', 'add', `${at(1)}/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (const [ns, host, end] of [[netns.rabbitmq, 2, 'r'], [netns.dataPlane, 3, 'd']] as const) {
      await ip('netns', 'add', ns);
      undo.push(() => removeNetns(ns));
      // A veth pair: eth0 in the namespace, its other end on the bridge (gone with the namespace).
      await ip('link', 'add', `esh${id}${end}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('link', 'set', `esh${id}${end}`, 'master', bridge, 'up');
      await ip('-n', ns, 'addr', 'add', `${at(host)}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }

    nodeEnv = {
      ...process.env,
      RABBITMQ_DIR: join(dir, 'rabbitmq'),
      RABBITMQ_NODE: 'earshot-multihost@localhost',
      RABBITMQ_IP: at(2),
      RABBITMQ_AMQP_PORT: String(ports.amqp),
      RABBITMQ_HTTP_PORT: String(ports.http),
      RABBITMQ_DIST_PORT: String(ports.dist),
      RABBITMQ_EPMD_PORT: String(ports.epmd),
    };
    undo.push(() => services('rabbitmq-down'));
    await services('rabbitmq-up');

    rt = await startRuntime(join(dir, 'data'), {
      EARSHOT_BROKER: 'rabbitmq',
      EARSHOT_HOST: at(1),
      EARSHOT_DATAPLANE_NETNS: netns.dataPlane,
      EARSHOT_INGRESS_HOST: at(3),
      EARSHOT_RABBITMQ_URL: `amqp://${credentials}@${at(2)}:${ports.amqp}`,
      EARSHOT_RABBITMQ_MANAGEMENT_URL: `http://${at(2)}:${ports.http}`,
    });
  });

  afterAll(async () => {
    if (rt) undo.push(() => stopRuntime(rt!));
    const failures: unknown[] = [];
    for (const step of undo.reverse()) await step().catch((err: unknown) => failures.push(err));
    expect(failures).toEqual([]);
  });

  /** tools/services.sh run on the RabbitMQ host: the node it starts stays in that namespace. */
  const services = (command: string) => promisify(execFile)('ip', ['netns', 'exec', netns.rabbitmq, 'tools/services.sh', command], { env: nodeEnv });

  it('login, upload, converted, the MP3 downloaded, one email; every hop crossed a namespace', async () => {
    const { ready, token } = rt!;
    const auth = { authorization: `Bearer ${token}` };
    expect(ready.broker).toMatch(new RegExp(`^http://${at(3)}:\\d+$`)); // K_SINK: the ingress on its host
    for (const url of Object.values(ready.functions)) expect(url).toMatch(new RegExp(`^http://${at(1)}:\\d+$`));

    const video = await makeVideo(join(dir, 'talk.mp4'), { seconds: 2 });
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(await readFile(video))]), 'talk.mp4');
    const res = await fetch(`${ready.functions.upload}/upload`, { method: 'POST', body: form, headers: auth });
    expect(res.status).toBe(202);
    const { videoId } = (await res.json()) as { videoId: string };

    const job = await waitForJob(rt!, videoId, 'converted');
    const mp3 = await fetch(`${ready.functions.download}${job.downloadUrl}`, { headers: auth });
    expect(mp3.status).toBe(200);
    await writeFile(join(dir, 'talk.mp3'), Buffer.from(await mp3.arrayBuffer()));
    expect(Math.abs((await decodedSeconds(join(dir, 'talk.mp3'))) - (await decodedSeconds(video)))).toBeLessThanOrEqual(0.5);

    const mails = await mailsFor(ready.outbox, videoId, 1);
    await sleep(500); // a second email would have arrived by now
    expect(await mailsFor(ready.outbox, videoId, 2, 0)).toHaveLength(1);
    expect(mails[0]!.text).toContain(`${ready.functions.download}/download/${videoId}`);

    // Each part ran on its host: the data plane's processes in its namespace, RabbitMQ in its own,
    // the runtime in this one; none of the first two answers on this namespace's loopback.
    const [dataPlaneNs, rabbitmqNs, here] = [
      await namespaceOf(netns.dataPlane),
      await namespaceOf(netns.rabbitmq),
      await readlink('/proc/self/ns/net'),
    ];
    expect(Object.keys(ready.dataPlane!)).toContain('earshot-broker-ingress');
    for (const pid of Object.values(ready.dataPlane!)) expect(await readlink(`/proc/${pid}/ns/net`)).toBe(dataPlaneNs);
    const beam = (await readFile(join(dir, 'rabbitmq', 'rabbitmq.pid'), 'utf8')).trim();
    expect(await readlink(`/proc/${beam}/ns/net`)).toBe(rabbitmqNs);
    expect(await readlink(`/proc/${rt!.child.pid}/ns/net`)).toBe(here);
    expect(new Set([dataPlaneNs, rabbitmqNs, here]).size).toBe(3);
    const ingressPort = Number(new URL(ready.broker).port);
    for (const port of [ports.amqp, ports.http, ingressPort]) expect(await listening('127.0.0.1', port), `127.0.0.1:${port}`).toBe(false);

    // RabbitMQ sees the data plane's AMQP connections arrive from the data plane's address.
    type Connection = { vhost: string; peer_host: string };
    let connections: Connection[] = [];
    for (const end = Date.now() + 60_000; Date.now() < end; await sleep(500)) {
      const all = (await (await fetch(`http://${at(2)}:${ports.http}/api/connections`, {
        headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` },
      })).json()) as Connection[];
      connections = all.filter((c) => c.vhost === ready.vhost);
      if (connections.length >= Object.keys(ready.dataPlane!).length) break;
    }
    expect(connections.length).toBeGreaterThanOrEqual(Object.keys(ready.dataPlane!).length);
    expect(new Set(connections.map((c) => c.peer_host))).toEqual(new Set([at(3)]));
  });
}

/** `net:[inode]`, as /proc/<pid>/ns/net reads for a process in the named namespace. */
const namespaceOf = async (ns: string) => `net:[${(await stat(`/run/netns/${ns}`)).ino}]`;

/** Whatever still runs in it (a node that would not stop) is killed first: `ip netns del` leaves a namespace in use alive. */
async function removeNetns(ns: string) {
  const { stdout } = await ip('netns', 'pids', ns);
  for (const pid of stdout.split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
  await ip('netns', 'del', ns);
}

/** SIGTERM; the runtime stops its data plane on the way out, and its vhost goes. */
async function stopRuntime(rt: Runtime) {
  if (rt.child.exitCode === null && rt.child.signalCode === null) {
    const exited = once(rt.child, 'exit');
    rt.child.kill('SIGTERM');
    await exited;
  }
  const vhost = rt.ready.vhost!;
  for (const end = Date.now() + 60_000; (await dataPlaneProcesses(vhost)).length > 0 && Date.now() < end; ) await sleep(250);
  expect(await dataPlaneProcesses(vhost), `data-plane processes of ${vhost} still running`).toEqual([]);
}

// As in test/dev.test.ts.
const waitForJob = async (rt: Runtime, id: string, status: string, ms = 120_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const res = await fetch(`${rt.ready.functions.download}/jobs/${id}`, { headers: { authorization: `Bearer ${rt.token}` } });
    const job = (await res.json()) as { status: string; downloadUrl?: string };
    if (job.status === status) return job;
    if (Date.now() > end) throw new Error(`job ${id} is still ${job.status}`);
    await sleep(200);
  }
};

const mailsFor = async (outbox: string, id: string, count: number, ms = 30_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const files = (await readdir(outbox).catch(() => [])).filter((f) => f.includes(id));
    if (files.length >= count || Date.now() > end) {
      return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(outbox, f), 'utf8')) as { to: string; subject: string; text: string }));
    }
    await sleep(100);
  }
};
