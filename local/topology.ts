/**
 * What the Knative manifests say about earshot's topology, read for the local runtime and for
 * `make deploy`: the functions with their env, concurrency and scale, the broker, the triggers,
 * and the PingSources.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface Manifest {
  kind: string;
  file: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- checked by kubeconform against the CRD schemas
  data?: Record<string, string>;
}

export interface Delivery {
  retry: number;
  backoffPolicy: 'linear' | 'exponential';
  backoffDelayMs: number;
  /** The Service that receives what cannot be delivered. */
  deadLetterSink?: string;
  /** One attempt's limit (the Trigger's `delivery.timeout`); without it, the subscriber's own. */
  timeoutMs?: number;
}

export interface FunctionSpec {
  name: string;
  /** Names of the variables the Service takes from its Secret. */
  secretEnv: string[];
  /** 0: no limit. */
  containerConcurrency: number;
  /** The most pods at once (`autoscaling.knative.dev/max-scale`); 0: no limit, as Knative reads it unset or "0". */
  maxScale: number;
  /** The longest a request may take (Knative's `timeoutSeconds`, 300 when unset). */
  timeoutSeconds: number;
  /** Bound to the broker by a SinkBinding: it gets K_SINK. */
  sendsEvents: boolean;
  clusterLocal: boolean;
  /** The container's securityContext.readOnlyRootFilesystem. */
  readOnlyRootFilesystem: boolean;
  /** Where the container mounts its emptyDir volumes: the only places it may write to then. */
  emptyDirs: string[];
}

export interface TriggerSpec {
  name: string;
  /** CloudEvent attributes that must match exactly. */
  filter: Record<string, string>;
  subscriber: string;
  delivery: Delivery;
  parallelism: number;
}

/** A PingSource: a CloudEvent to its sink at each time of its cron schedule. */
export interface PingSourceSpec {
  name: string;
  /** The manifest's, else the one make deploy installs into: it is part of the events' source. */
  namespace: string;
  schedule: string;
  /** The IANA zone the schedule is read in; UTC when unset, as on Knative. */
  timezone?: string;
  /** The events' body. */
  data?: string;
  contentType?: string;
  /** The Service it sends to. */
  sink: string;
}

export interface Topology {
  broker: { name: string; delivery: Delivery };
  functions: FunctionSpec[];
  triggers: TriggerSpec[];
  pingSources: PingSourceSpec[];
  /** The ConfigMap every function reads. */
  config: Record<string, string>;
}

export function readManifests(dir: string): Manifest[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && !f.includes('.template.'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => ({ ...(d.toJS() as Manifest), file: join(dir, f) })));
}

export function readTopology(root = '.'): Topology {
  const all = [...readManifests(join(root, 'knative')), ...readManifests(join(root, 'eventing'))];
  const ofKind = (kind: string) => all.filter((m) => m.kind === kind);
  const [broker] = ofKind('Broker');
  if (!broker) throw new Error('eventing/ has no Broker');
  const bound = new Set(ofKind('SinkBinding').map((b) => b.spec.subject.name as string));
  const brokerDelivery = delivery(broker.spec.delivery ?? {});

  return {
    broker: { name: broker.metadata.name, delivery: brokerDelivery },
    config: ofKind('ConfigMap')[0]?.data ?? {},
    functions: ofKind('Service').map((s) => ({
      name: s.metadata.name,
      secretEnv: (s.spec.template.spec.containers[0].env ?? []).map((e: { name: string }) => e.name),
      containerConcurrency: s.spec.template.spec.containerConcurrency ?? 0,
      maxScale: Number(s.spec.template.metadata?.annotations?.['autoscaling.knative.dev/max-scale'] ?? 0),
      timeoutSeconds: s.spec.template.spec.timeoutSeconds ?? 300,
      sendsEvents: bound.has(s.metadata.name),
      clusterLocal: s.metadata.labels?.['networking.knative.dev/visibility'] === 'cluster-local',
      readOnlyRootFilesystem: s.spec.template.spec.containers[0].securityContext?.readOnlyRootFilesystem === true,
      emptyDirs: emptyDirMounts(s.spec.template.spec),
    })),
    triggers: ofKind('Trigger')
      .filter((t) => t.spec.broker === broker.metadata.name)
      .map((t) => ({
        name: t.metadata.name,
        filter: t.spec.filter?.attributes ?? {},
        subscriber: t.spec.subscriber.ref.name,
        // A Trigger's delivery replaces the broker's as a whole.
        delivery: t.spec.delivery ? delivery(t.spec.delivery) : brokerDelivery,
        parallelism: Number(t.metadata.annotations?.['rabbitmq.eventing.knative.dev/parallelism'] ?? 1),
      })),
    pingSources: ofKind('PingSource').map((p) => ({
      name: p.metadata.name,
      namespace: p.metadata.namespace ?? defaultNamespace,
      schedule: p.spec.schedule,
      ...(p.spec.timezone && { timezone: p.spec.timezone }),
      ...(p.spec.data !== undefined && { data: String(p.spec.data) }),
      ...(p.spec.contentType && { contentType: p.spec.contentType }),
      sink: p.spec.sink.ref.name,
    })),
  };
}

/** make deploy's NAMESPACE by default (Makefile). */
const defaultNamespace = 'earshot';

function delivery(spec: { retry?: number; backoffPolicy?: string; backoffDelay?: string; timeout?: string; deadLetterSink?: { ref?: { name: string } } }): Delivery {
  return {
    retry: spec.retry ?? 0,
    backoffPolicy: spec.backoffPolicy === 'linear' ? 'linear' : 'exponential',
    backoffDelayMs: spec.backoffDelay ? isoDurationMs(spec.backoffDelay) : 1000,
    deadLetterSink: spec.deadLetterSink?.ref?.name,
    ...(spec.timeout && { timeoutMs: isoDurationMs(spec.timeout) }),
  };
}

/** ISO 8601 durations as Knative uses them: PT0.5S, PT2M, P1DT2H. */
export function isoDurationMs(text: string): number {
  const match = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) throw new Error(`not an ISO 8601 duration: ${text}`);
  const [, d = 0, h = 0, m = 0, s = 0] = match;
  return Math.round((((Number(d) * 24 + Number(h)) * 60 + Number(m)) * 60 + Number(s)) * 1000);
}

function emptyDirMounts(spec: { volumes?: { name: string; emptyDir?: object }[]; containers: { volumeMounts?: { name: string; mountPath: string }[] }[] }): string[] {
  const emptyDirs = new Set((spec.volumes ?? []).filter((v) => v.emptyDir).map((v) => v.name));
  return (spec.containers[0]!.volumeMounts ?? []).filter((m) => emptyDirs.has(m.name)).map((m) => m.mountPath);
}
