/** The Knative manifests and the code agree: functions, event types, env, routing, visibility. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { exportJWK, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { EventTypes } from '../shared/events';
import { generateLinkKey } from '../shared/links';
import { functionNames } from '../tools/build';
import { readManifests } from '../local/topology';
import { tempDir } from './support';

const manifests = [...readManifests('knative'), ...readManifests('eventing')];
const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const services = ofKind('Service');
const triggers = ofKind('Trigger');
const [broker] = ofKind('Broker');
const [config] = ofKind('ConfigMap');
const secret = parse(readFileSync('knative/secret.template.yaml', 'utf8')) as { metadata: { name: string }; stringData: Record<string, string> };
const service = (name: string) => services.find((s) => s.metadata.name === name)!;
const container = (name: string) => service(name).spec.template.spec.containers[0];
const serviceRef = (ref: { apiVersion: string; kind: string; name: string }) =>
  ref.apiVersion === 'serving.knative.dev/v1' && ref.kind === 'Service' && services.some((s) => s.metadata.name === ref.name);

describe('Knative manifests', () => {
  let names: string[];
  beforeAll(async () => {
    names = await functionNames();
  });

  it('give every function a Service running its image, and nothing else', () => {
    expect(services.map((s) => s.metadata.name).sort()).toEqual(names);
    for (const name of names) {
      expect(container(name).image).toBe(`registry.example.com/earshot/${name}:latest`);
    }
  });

  it('route every event type the code emits, and only those', () => {
    const filtered = triggers.map((t) => t.spec.filter.attributes.type).sort();
    expect([...new Set(filtered)]).toEqual(Object.values(EventTypes).sort());
    expect(filtered).toHaveLength(new Set(filtered).size);
  });

  it('send each event type to the function that handles it', () => {
    const route = Object.fromEntries(triggers.map((t) => [t.spec.filter.attributes.type, t.spec.subscriber.ref.name]));
    expect(route).toEqual({
      [EventTypes.videoUploaded]: 'convert',
      [EventTypes.audioConverted]: 'notify',
      [EventTypes.conversionFailed]: 'notify',
    });
  });

  it('name existing Services as subscribers and dead-letter sinks, on the one broker', () => {
    for (const t of triggers) {
      expect(t.spec.broker).toBe(broker!.metadata.name);
      expect(serviceRef(t.spec.subscriber.ref), t.metadata.name).toBe(true);
      expect(serviceRef(t.spec.delivery.deadLetterSink.ref), t.metadata.name).toBe(true);
      expect(t.spec.delivery).toMatchObject({ retry: expect.any(Number), backoffPolicy: expect.stringMatching(/^(linear|exponential)$/), backoffDelay: expect.stringMatching(/^PT/) });
    }
    expect(serviceRef(broker!.spec.delivery.deadLetterSink.ref)).toBe(true);
    expect(broker!.metadata.annotations!['eventing.knative.dev/broker.class']).toBe('RabbitMQBroker');
    const [brokerConfig] = ofKind('RabbitmqBrokerConfig');
    expect(broker!.spec.config).toMatchObject({ kind: 'RabbitmqBrokerConfig', name: brokerConfig!.metadata.name });
    expect(brokerConfig!.spec).toMatchObject({ queueType: 'quorum', rabbitmqClusterReference: { name: ofKind('RabbitmqCluster')[0]!.metadata.name } });
  });

  it('keep convert, notify and deadletter cluster-local, and the user-facing functions public', () => {
    const local = services.filter((s) => (s.metadata as { labels?: Record<string, string> }).labels?.['networking.knative.dev/visibility'] === 'cluster-local');
    expect(local.map((s) => s.metadata.name).sort()).toEqual(['convert', 'deadletter', 'notify', 'sweeper']);
  });

  it('ping the sweeper on a schedule, from a PingSource whose sink is its Service', () => {
    const [ping, ...more] = ofKind('PingSource');
    expect(more).toEqual([]);
    expect(ping!.spec.schedule).toMatch(/^\S+( \S+){4}$/);
    expect(serviceRef(ping!.spec.sink.ref)).toBe(true);
    expect(ping!.spec.sink.ref.name).toBe('sweeper');
    expect(container('sweeper').securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('scale every function to zero, with probes on /healthz', () => {
    for (const s of services) {
      const annotations = s.spec.template.metadata.annotations;
      expect(annotations['autoscaling.knative.dev/min-scale'], s.metadata.name).toBe('0');
      expect(Number(annotations['autoscaling.knative.dev/max-scale'])).toBeGreaterThan(0);
      const c = container(s.metadata.name);
      expect(c.readinessProbe.httpGet.path).toBe('/healthz');
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(c.securityContext.runAsNonRoot).toBe(true);
    }
  });

  it('give convert one ffmpeg per pod, time for its longest conversion, and matching parallelism', () => {
    const spec = service('convert').spec.template.spec;
    expect(spec.containerConcurrency).toBe(1);
    expect(spec.timeoutSeconds).toBeGreaterThan(Number((config as unknown as { data: Record<string, string> }).data.FFMPEG_TIMEOUT_SECONDS) + 30);
    expect(container('convert').resources.limits.cpu).toBeDefined();
    const trigger = triggers.find((t) => t.spec.subscriber.ref.name === 'convert')!;
    const maxPods = Number(service('convert').spec.template.metadata.annotations['autoscaling.knative.dev/max-scale']);
    expect(Number(trigger.metadata.annotations!['rabbitmq.eventing.knative.dev/parallelism'])).toBeLessThanOrEqual(maxPods);
  });

  it('take secrets only from keys the Secret template has, and give the private key to login alone', () => {
    for (const s of services) {
      const c = container(s.metadata.name);
      expect(c.envFrom).toEqual([{ configMapRef: { name: config!.metadata.name } }]);
      for (const e of c.env ?? []) {
        expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
        expect(Object.keys(secret.stringData)).toContain(e.valueFrom.secretKeyRef.key);
      }
    }
    const holders = services.filter((s) => (container(s.metadata.name).env ?? []).some((e: { name: string }) => e.name === 'JWT_PRIVATE_KEY'));
    expect(holders.map((s) => s.metadata.name)).toEqual(['login']);
  });

  it('bind K_SINK to the broker for the functions that send events', () => {
    const bindings = ofKind('SinkBinding');
    expect(bindings.map((b) => b.spec.subject.name).sort()).toEqual(['deadletter', 'upload']);
    for (const b of bindings) {
      expect(serviceRef(b.spec.subject)).toBe(true);
      expect(b.spec.sink.ref).toMatchObject({ kind: 'Broker', name: broker!.metadata.name });
    }
  });

  it('keep mysql-proxy cluster-local, on one replica (its sessions live in memory), told where MySQL is', () => {
    const [proxy] = readManifests('knative/mysql');
    expect(proxy).toMatchObject({ kind: 'Service', metadata: { name: 'mysql-proxy', labels: { 'networking.knative.dev/visibility': 'cluster-local' } } });
    expect(proxy!.spec.template.metadata.annotations['autoscaling.knative.dev/max-scale']).toBe('1');
    expect(proxy!.spec.template.spec.containers[0].env.map((e: { name: string }) => e.name)).toContain('MYSQL_URL');
  });

  describe('provide every variable a function requires', () => {
    let secrets: Record<string, string>;
    beforeAll(async () => {
      const dir = await tempDir();
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      // Local stand-ins for the Secret's values: the point is which variables are set, not where they lead.
      secrets = {
        MEDIA_URL: pathToFileURL(join(dir, 'store')).href,
        USERS_DB_URL: pathToFileURL(join(dir, 'users.db')).href,
        JWT_PRIVATE_KEY: JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'test' }),
        LINK_SIGNING_KEYS: JSON.stringify({ keys: [generateLinkKey('test')] }),
        SENDGRID_API_KEY: 'SG.local-test-value',
      };
    });

    /** The environment Knative would give the function: ConfigMap, its Secret keys, K_SINK if bound. */
    const knativeEnv = (name: string): Record<string, string> => {
      const env: Record<string, string> = { ...(config as unknown as { data: Record<string, string> }).data };
      for (const e of container(name).env ?? []) env[e.name] = secrets[e.valueFrom.secretKeyRef.key]!;
      if (ofKind('SinkBinding').some((b) => b.spec.subject.name === name)) env.K_SINK = 'http://broker-ingress.example/earshot';
      return env;
    };

    it.each(['convert', 'deadletter', 'download', 'login', 'notify', 'sweeper', 'upload', 'web'])('%s starts with its Service env alone', async (name) => {
      const child = spawn(process.execPath, ['--import', 'tsx', `functions/${name}/main.ts`], {
        env: { PATH: process.env.PATH!, PORT: '0', HOST: '127.0.0.1', ...knativeEnv(name) },
      });
      const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
        child.once('exit', (code) => reject(new Error(`${name} exited ${code} before logging`)));
      });
      child.kill('SIGTERM');
      expect(first).toMatchObject({ msg: 'listening' });
    });
  });
});
