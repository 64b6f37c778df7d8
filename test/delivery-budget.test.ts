/**
 * Every delivery eventing-rabbitmq makes must end (acked) before RabbitMQ's consumer_timeout, or
 * RabbitMQ closes the dispatcher's channel and redelivers instead of dead-lettering.
 *
 * The worst case, as the v0.48 dispatcher (cmd/dispatcher, pkg/dispatcher) behaves:
 * - a message is acked only after its last attempt: attempts = retry + 1, each up to the
 *   subscriber's timeout (the Trigger's delivery.timeout if set, else the Service's timeoutSeconds:
 *   the dispatcher's own TIMEOUT defaults to none);
 * - between attempts it sleeps delay·2^k (exponential) or delay·k (linear) for k = 1…retry
 *   (cloudevents sdk-go's RetryParams.BackoffFor with tries = k);
 * - the channel prefetches 100 messages (rabbit.ChannelQoS) whatever PARALLELISM is, so a message
 *   may wait behind ceil(100 / parallelism) rounds of deliveries before its own;
 * - Triggers with a dead-letter sink get a second dispatcher, same delivery and parallelism, to
 *   that sink; the Broker's dead-letter dispatcher has one worker and the Broker's delivery.
 */
import { describe, expect, it } from 'vitest';
import { backoffMs } from '../local/broker';
import { isoDurationMs, readManifests, readTopology, type Delivery, type Manifest } from '../local/topology';

const PREFETCH = 100;

interface Dispatcher {
  name: string;
  subscriber: string;
  delivery: Delivery;
  timeoutMs?: number;
  parallelism: number;
}

function worstCaseMs(d: Dispatcher, serviceTimeoutMs: (name: string) => number): number {
  const attemptMs = Math.min(d.timeoutMs ?? Infinity, serviceTimeoutMs(d.subscriber));
  let backoff = 0;
  for (let k = 1; k <= d.delivery.retry; k++) backoff += backoffMs(d.delivery, k);
  const perMessage = (d.delivery.retry + 1) * attemptMs + backoff;
  return Math.ceil(PREFETCH / d.parallelism) * perMessage;
}

function dispatchers(manifests: Manifest[]): Dispatcher[] {
  const topology = readTopology();
  const triggers = manifests.filter((m) => m.kind === 'Trigger');
  const timeoutOf = (name: string) => {
    const spec = triggers.find((t) => t.metadata.name === name)?.spec.delivery;
    return spec?.timeout ? isoDurationMs(spec.timeout) : undefined;
  };
  return [
    ...topology.triggers.flatMap((t): Dispatcher[] => [
      { name: t.name, subscriber: t.subscriber, delivery: t.delivery, timeoutMs: timeoutOf(t.name), parallelism: t.parallelism },
      ...(t.delivery.deadLetterSink
        ? [{ name: `${t.name} (dead letters)`, subscriber: t.delivery.deadLetterSink, delivery: t.delivery, timeoutMs: timeoutOf(t.name), parallelism: t.parallelism }]
        : []),
    ]),
    ...(topology.broker.delivery.deadLetterSink
      ? [{ name: `${topology.broker.name} (dead letters)`, subscriber: topology.broker.delivery.deadLetterSink, delivery: topology.broker.delivery, parallelism: 1 }]
      : []),
  ];
}

function consumerTimeoutMs(manifests: Manifest[]): number {
  const cluster = manifests.find((m) => m.kind === 'RabbitmqCluster');
  const setting = /^\s*consumer_timeout\s*=\s*(\d+)\s*$/m.exec(cluster?.spec.rabbitmq?.additionalConfig ?? '');
  return setting ? Number(setting[1]) : 30 * 60 * 1000; // RabbitMQ's default
}

const manifests = [...readManifests('knative'), ...readManifests('eventing')];
const services = new Map(manifests.filter((m) => m.kind === 'Service').map((s) => [s.metadata.name, s]));
// Knative Serving's default revision timeout (config-defaults revision-timeout-seconds).
const serviceTimeoutMs = (name: string) => (services.get(name)?.spec.template.spec.timeoutSeconds ?? 300) * 1000;
const limit = consumerTimeoutMs(manifests);
const hours = (ms: number) => `${(ms / 3_600_000).toFixed(2)} h`;

describe('delivery budgets against RabbitMQ consumer_timeout', () => {
  const all = dispatchers(manifests);

  it('covers every Trigger, each dead-letter dispatcher and the Broker’s', () => {
    const triggers = manifests.filter((m) => m.kind === 'Trigger').map((t) => t.metadata.name);
    expect(all.map((d) => d.name)).toEqual(expect.arrayContaining([...triggers, 'earshot (dead letters)']));
    expect(limit).toBe(8 * 3_600_000); // set explicitly in eventing/rabbitmq.yaml
  });

  it('sets each Trigger’s delivery in full, so no dispatcher default decides it', () => {
    for (const t of manifests.filter((m) => m.kind === 'Trigger')) {
      expect(t.spec.delivery, t.metadata.name).toMatchObject({ retry: expect.any(Number), backoffPolicy: expect.any(String), backoffDelay: expect.any(String) });
      expect(t.metadata.annotations?.['rabbitmq.eventing.knative.dev/parallelism'], t.metadata.name).toMatch(/^\d+$/);
    }
  });

  it.each(all.map((d) => [d.name, d] as const))('%s ends within the consumer timeout', (_name, dispatcher) => {
    const worst = worstCaseMs(dispatcher, serviceTimeoutMs);
    expect(worst, `${hours(worst)} against ${hours(limit)}`).toBeLessThan(limit);
  });

  it('rejects notify’s old settings (retry 10, PT2S, parallelism 4): 33 h against 8 h, and 79 min even without the prefetch wait', () => {
    const old: Dispatcher = { name: 'old notify', subscriber: 'notify', parallelism: 4, delivery: { retry: 10, backoffPolicy: 'exponential', backoffDelayMs: 2000 } };
    expect(worstCaseMs(old, serviceTimeoutMs)).toBe(25 * (11 * 60_000 + 4_092_000));
    expect(worstCaseMs(old, serviceTimeoutMs)).toBeGreaterThan(limit);
    expect(worstCaseMs({ ...old, parallelism: PREFETCH }, serviceTimeoutMs)).toBeGreaterThan(30 * 60_000);
  });
});
