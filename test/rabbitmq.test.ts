/**
 * The real RabbitMQ broker data plane on this machine, without Kubernetes: `make services` runs a
 * private RabbitMQ node and builds eventing-rabbitmq's `ingress` and `dispatcher` and our
 * `topology` (tools/rabbitmq) into .services/bin. Here, for the repository's manifests:
 * - topology declares, in a fresh vhost, the objects eventing-rabbitmq's own constructors make, and
 *   RabbitMQ then holds exactly those (exchanges, queues and their arguments, bindings and their
 *   arguments, policies, and the dead-letter exchange each queue ends up with);
 * - the ingress and every dispatcher run with the env the controller would give them, in front of
 *   stand-ins for convert, notify and deadletter: each event type reaches its subscriber only, a
 *   reply from convert goes on to notify, and a delivery answered 500 gets the Trigger's retries and
 *   then reaches the dead-letter sink with the error extensions.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EventTypes, makeEvent, toHttp, type EarshotEvent } from '../shared/events';
import { describeWithService } from './services';
import { freePort } from './support';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, '.services/bin');
// tools/services.sh: local-development credentials and ports.
const management = process.env.RABBITMQ_TEST_MANAGEMENT_URL ?? 'http://127.0.0.1:15673';
const amqp = process.env.RABBITMQ_TEST_AMQP_URL ?? 'amqp://earshot:earshot-local-dev@127.0.0.1:5673';
const auth = `Basic ${Buffer.from('earshot:earshot-local-dev').toString('base64')}`;

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(management + path, { ...init, headers: { authorization: auth, 'content-type': 'application/json' } });
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
  return (res.status === 204 || res.headers.get('content-length') === '0' ? undefined : await res.json()) as T;
}

async function nodeUp(): Promise<boolean> {
  try {
    await api('/api/overview', { signal: AbortSignal.timeout(30_000) });
    return true;
  } catch {
    return false;
  }
}
const binaries = ['rabbitmq-topology', 'rabbitmq-ingress', 'rabbitmq-dispatcher'].every((b) => existsSync(join(bin, b)));

// What rabbitmq-topology prints (tools/rabbitmq/main.go): topology-operator objects and processes.
interface Obj<S> { metadata: { name: string }; spec: S }
interface Topology {
  vhost: string;
  exchanges: Obj<{ name: string; type: string; durable?: boolean; autoDelete?: boolean; arguments?: object }>[];
  queues: Obj<{ name: string; type: string; durable?: boolean; autoDelete?: boolean; arguments?: object }>[];
  bindings: Obj<{ source: string; destination: string; destinationType: string; routingKey?: string; arguments?: object }>[];
  policies: Obj<{ name: string; pattern: string; applyTo: string; priority?: number; definition: object }>[];
  processes: { name: string; command: string; env: Record<string, string>; localEnv?: Record<string, string> }[];
}

interface Received { headers: IncomingHttpHeaders; body: string }
/** A subscriber: records every delivery and answers with `answer`. */
async function standIn(answer: (r: Received) => { status: number; headers?: Record<string, string>; body?: string }) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
      const r = { headers: req.headers, body };
      received.push(r);
      const a = answer(r);
      res.writeHead(a.status, a.headers).end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { received, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const until = async (what: string, check: () => boolean | Promise<boolean>, seconds: number) => {
  for (const end = Date.now() + seconds * 1000; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
    if (await check()) return;
  }
  throw new Error(`${what}: not within ${seconds} s`);
};

const owner = { id: 'u1', email: 'a@example.org' };
const uploaded = (videoId: string) =>
  makeEvent(EventTypes.videoUploaded, '/earshot/upload', videoId, { videoId, owner, filename: 'a.mp4', contentType: 'video/mp4', sizeBytes: 1 });
const converted = (videoId: string) =>
  makeEvent(EventTypes.audioConverted, '/earshot/convert', videoId, { videoId, mp3Id: `${videoId}-mp3`, owner, filename: 'a.mp4', durationSeconds: 1, sizeBytes: 1 });
const failed = (videoId: string) =>
  makeEvent(EventTypes.conversionFailed, '/earshot/convert', videoId, { videoId, owner, filename: 'a.mp4', reason: 'silent' });
const ids = (s: { received: Received[] }) => s.received.map((r) => `${r.headers['ce-type']} ${r.headers['ce-subject']}`);

describeWithService('RabbitMQ and eventing-rabbitmq\'s ingress and dispatcher', (await nodeUp()) && binaries, 'the RabbitMQ broker data plane', () => {
  const vhost = `earshot-test-${process.pid}-${Date.now()}`;
  const children: ChildProcess[] = [];
  let topology: Topology;
  let ingress: string;
  // convert: subject "fail-*" is answered 500, "reply-*" with an audio.converted reply, the rest 202.
  let convert: Awaited<ReturnType<typeof standIn>>;
  let notify: Awaited<ReturnType<typeof standIn>>;
  let deadletter: Awaited<ReturnType<typeof standIn>>;

  const post = async (event: EarshotEvent) => {
    const { headers, body } = toHttp(event);
    const res = await fetch(ingress, { method: 'POST', headers, body });
    expect(res.status, await res.text()).toBe(202);
  };

  beforeAll(async () => {
    convert = await standIn(({ headers }) => {
      const subject = String(headers['ce-subject']);
      if (subject.startsWith('fail-')) return { status: 500 };
      if (subject.startsWith('reply-') && headers['ce-type'] === EventTypes.videoUploaded) {
        const reply = toHttp(converted(subject));
        return { status: 200, headers: reply.headers, body: reply.body };
      }
      return { status: 202 };
    });
    notify = await standIn(() => ({ status: 202 }));
    deadletter = await standIn(() => ({ status: 202 }));
    const port = await freePort();
    ingress = `http://127.0.0.1:${port}`;
    const { stdout } = await promisify(execFile)(join(bin, 'rabbitmq-topology'), [
      '-repo', root, '-vhost', vhost, '-amqp', amqp, '-management', management, '-ingress', ingress,
      '-url', `convert=${convert.url}`, '-url', `notify=${notify.url}`, '-url', `deadletter=${deadletter.url}`,
    ]);
    topology = JSON.parse(stdout) as Topology;

    for (const p of topology.processes) {
      const child = spawn(p.command, [], { env: { PATH: process.env.PATH!, ...p.env, ...p.localEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let log = '';
      child.stdout!.setEncoding('utf8').on('data', (c: string) => (log += c));
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (log += c));
      await until(`${p.name} starts`, async () => {
        if (child.exitCode !== null) throw new Error(`${p.name} exited with ${child.exitCode}: ${log}`);
        if (p.env.QUEUE_NAME) return log.includes('starting to process messages');
        return fetch(ingress).then(() => true, () => false); // the ingress answers 405 to GET once it listens
      }, 60);
    }
  }, 300_000);

  afterAll(async () => {
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // The ingress drains for up to 45 s after SIGTERM, as in a pod; nothing is in flight here.
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }));
    for (const s of [convert, notify, deadletter]) s?.server.close();
    await api(`/api/vhosts/${encodeURIComponent(vhost)}`, { method: 'DELETE' }).catch(() => undefined);
  }, 60_000);

  it('declares in RabbitMQ exactly the objects eventing-rabbitmq\'s constructors make', { timeout: 300_000 }, async () => {
    const v = encodeURIComponent(vhost);
    const exchanges = await api<{ name: string; type: string; durable: boolean; auto_delete: boolean; internal: boolean; arguments: object }[]>(`/api/exchanges/${v}`);
    expect(exchanges.filter((e) => e.name !== '' && !e.name.startsWith('amq.')).map(({ name, type, durable, auto_delete, internal, arguments: a }) => ({ name, type, durable, auto_delete, internal, arguments: a })))
      .toEqual(expect.arrayContaining(topology.exchanges.map(({ spec: s }) => ({ name: s.name, type: s.type, durable: !!s.durable, auto_delete: !!s.autoDelete, internal: false, arguments: s.arguments ?? {} }))));
    expect(exchanges.filter((e) => e.name !== '' && !e.name.startsWith('amq.'))).toHaveLength(topology.exchanges.length);

    const queues = await api<{ name: string; durable: boolean; auto_delete: boolean; arguments: object; effective_policy_definition: object }[]>(`/api/queues/${v}`);
    expect(queues.map(({ name, durable, auto_delete, arguments: a }) => ({ name, durable, auto_delete, arguments: a })).sort((a, b) => a.name.localeCompare(b.name)))
      .toEqual(topology.queues.map(({ spec: s }) => ({ name: s.name, durable: !!s.durable, auto_delete: !!s.autoDelete, arguments: { ...s.arguments, 'x-queue-type': s.type } })).sort((a, b) => a.name.localeCompare(b.name)));

    const bindings = await api<{ source: string; destination: string; destination_type: string; routing_key: string; arguments: object }[]>(`/api/bindings/${v}`);
    const key = (b: object) => JSON.stringify(b);
    expect(bindings.filter((b) => b.source !== '').map(({ source, destination, destination_type, routing_key, arguments: a }) => ({ source, destination, destination_type, routing_key, arguments: a })).map(key).sort())
      .toEqual(topology.bindings.map(({ spec: s }) => ({ source: s.source, destination: s.destination, destination_type: s.destinationType, routing_key: s.routingKey ?? '', arguments: s.arguments ?? {} })).map(key).sort());

    const policies = await api<{ name: string; pattern: string; 'apply-to': string; priority: number; definition: object }[]>(`/api/policies/${v}`);
    expect(policies.map(({ name, pattern, 'apply-to': applyTo, priority, definition }) => ({ name, pattern, applyTo, priority, definition })).sort((a, b) => a.name.localeCompare(b.name)))
      .toEqual(topology.policies.map(({ spec: s }) => ({ name: s.name, pattern: s.pattern, applyTo: s.applyTo, priority: s.priority ?? 0, definition: s.definition })).sort((a, b) => a.name.localeCompare(b.name)));

    // Each queue dead-letters where the policy of highest priority matching its name says (RabbitMQ
    // reports a queue's effective policy a few seconds after the queue and policy exist).
    let effective = queues;
    await until('effective policies reported', async () => {
      effective = await api<typeof queues>(`/api/queues/${v}`);
      return effective.every((q) => q.effective_policy_definition !== undefined);
    }, 120);
    for (const q of effective) {
      const winner = topology.policies.filter((p) => new RegExp(p.spec.pattern).test(q.name)).sort((a, b) => (b.spec.priority ?? 0) - (a.spec.priority ?? 0))[0];
      expect(q.effective_policy_definition, q.name).toEqual(winner?.spec.definition ?? {});
    }
  });

  it('delivers each event type to its Trigger\'s subscriber only, a 500 after the retries to the dead-letter sink, a reply onward', async () => {
    // Posted first: the convert Trigger retries it 3 times (backoff 10 s · 2^k) before dead-lettering.
    await post(uploaded('fail-1'));
    await post(uploaded('v-1'));
    await post(converted('v-2'));
    await post(failed('v-3'));
    await post(uploaded('reply-4'));

    await until('the uploaded event at convert', () => ids(convert).includes(`${EventTypes.videoUploaded} v-1`), 120);
    await until('audio.converted and conversion.failed at notify', () =>
      ids(notify).includes(`${EventTypes.audioConverted} v-2`) && ids(notify).includes(`${EventTypes.conversionFailed} v-3`), 120);
    await until('convert\'s reply at notify', () => ids(notify).includes(`${EventTypes.audioConverted} reply-4`), 120);
    const reply = notify.received.find((r) => r.headers['ce-subject'] === 'reply-4')!;
    expect(JSON.parse(reply.body)).toMatchObject({ videoId: 'reply-4', mp3Id: 'reply-4-mp3' });

    await until('the failing event at deadletter', () => deadletter.received.length > 0, 480);
    const dead = deadletter.received[0]!;
    expect(dead.headers).toMatchObject({
      'ce-type': EventTypes.videoUploaded,
      'ce-subject': 'fail-1',
      'ce-knativeerrordest': convert.url,
      'ce-knativeerrorcode': '500',
    });
    expect(JSON.parse(dead.body)).toMatchObject({ videoId: 'fail-1' });
    const attempts = 1 + Number(topology.processes.find((p) => p.name === 'convert-on-video-uploaded-dispatcher')!.env.RETRY);

    // Nothing went anywhere else (by now the failing event has had minutes to stray). Delivery is
    // at least once: a channel RabbitMQ drops on a loaded machine hands its unacknowledged
    // messages out again, so the failing event may go round its retries more than once.
    const unique = (list: string[]) => [...new Set(list)].sort();
    expect(unique(ids(convert))).toEqual([`${EventTypes.videoUploaded} fail-1`, `${EventTypes.videoUploaded} reply-4`, `${EventTypes.videoUploaded} v-1`]);
    expect(ids(convert).filter((id) => id.endsWith(' fail-1')).length).toBeGreaterThanOrEqual(attempts);
    expect(unique(ids(notify))).toEqual([`${EventTypes.audioConverted} reply-4`, `${EventTypes.audioConverted} v-2`, `${EventTypes.conversionFailed} v-3`]);
    expect(unique(ids(deadletter))).toEqual([`${EventTypes.videoUploaded} fail-1`]);
  }, 600_000);
});
