/**
 * A model of one Kubernetes namespace with Knative and eventing-rabbitmq installed, enough to
 * replay `make deploy`'s steps and find the ones that need something no earlier step made.
 * What it knows, each from the upstream code (v0.48):
 * - `kn service apply` waits for Ready: the Service's ConfigMap and Secret must exist, and a
 *   function that refuses to start without K_SINK needs a SinkBinding whose sink has an address
 *   when the Service is admitted (eventing's SinkBinding.Do resolves the sink in the webhook);
 * - `kn broker create --dl-sink` and `kn source binding create --sink` resolve their refs first
 *   ("Error: not found");
 * - `kubectl apply` resolves nothing: the controllers do, later;
 * - a Broker has an address once its RabbitmqBrokerConfig and RabbitmqCluster exist, and is
 *   Ready once its dead-letter sink resolves too; a SinkBinding is Ready once its sink has an
 *   address and its subject exists (psbinding marks it SubjectMissing before); a Trigger once
 *   its Broker is Ready and its subscriber and dead-letter sink exist; a PingSource once its
 *   sink exists (its controller marks it SinkProvided false before).
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { Manifest } from '../local/topology';
import type { Step } from '../tools/deploy';

type Ref = { kind: string; name: string };

export class Namespace {
  created = false;
  readonly objects = new Map<string, Manifest>();

  constructor(
    /** Functions that exit at start without K_SINK (test/bundles.test.ts checks which). */
    private readonly needSink: string[],
    /** What the operator made by hand: the Secret. */
    existing: Manifest[] = [],
  ) {
    for (const m of existing) this.objects.set(key(m), m);
  }

  /** Runs one step as kubectl or kn would; throws what would stop `make deploy`. */
  run(step: Step): void {
    if (step.unless && this.succeeds(step.unless)) return;
    const [tool, verb, ...rest] = step.command;
    const args = parseArgs(rest);
    if (tool === 'kubectl' && verb === 'create' && args.positional[0] === 'namespace') {
      if (this.created) throw new Error('namespace already exists');
      this.created = true;
      return;
    }
    if (!this.created) throw new Error(`${step.command.join(' ')}: namespace not found`);
    const line = step.command.join(' ');
    if (tool === 'kubectl' && verb === 'get') return void this.need({ kind: capitalize(args.positional[0]!), name: args.positional[1]! }, line);
    if (tool === 'kubectl' && verb === 'apply') return read(args.flags.f!).forEach((m) => this.objects.set(key(m), m));
    if (tool === 'kubectl' && verb === 'delete') return read(args.flags.f!).forEach((m) => this.objects.delete(key(m)));
    if (tool === 'kubectl' && verb === 'wait') {
      for (const target of args.positional) {
        const [kind, name] = target.split('/') as [string, string];
        const object = this.need({ kind: this.kindOf(kind), name }, line);
        const why = this.notReady(object);
        if (why) throw new Error(`${line}: ${target} never becomes Ready (${why})`);
      }
      return;
    }
    if (tool === 'kn' && verb === 'service') return this.knService(args, line);
    if (tool === 'kn' && verb === 'broker' && args.positional[0] === 'create') {
      if (args.flags['dl-sink']) this.need(sinkRef(args.flags['dl-sink']), line);
      return this.add({ kind: 'Broker', file: '', metadata: { name: args.positional[1]! }, spec: { config: brokerConfig(args.flags['broker-config']) } });
    }
    if (tool === 'kn' && verb === 'source' && args.positional[0] === 'binding' && args.positional[1] === 'create') {
      this.need(sinkRef(args.flags.sink!), line);
      const [kind, apiVersion, name] = args.flags.subject!.split(':');
      return this.add({ kind: 'SinkBinding', file: '', metadata: { name: args.positional[2]! }, spec: { subject: { kind, apiVersion, name }, sink: { ref: sinkRef(args.flags.sink!) } } });
    }
    throw new Error(`the model does not know ${line}`);
  }

  /** Why an object is not Ready, or undefined when it is. */
  notReady(m: Manifest): string | undefined {
    switch (m.kind) {
      case 'Service':
        return undefined;
      case 'Broker': {
        const address = this.brokerAddress(m);
        if (address) return address;
        const dls = m.spec.delivery?.deadLetterSink?.ref;
        return dls && !this.get(dls) ? `dead-letter sink ${dls.kind}/${dls.name} not found` : undefined;
      }
      case 'SinkBinding': {
        const broker = this.get(m.spec.sink.ref);
        if (!broker) return `sink ${m.spec.sink.ref.name} not found`;
        return this.brokerAddress(broker) ?? (this.get(m.spec.subject) ? undefined : `subject ${m.spec.subject.name} missing`);
      }
      case 'Trigger': {
        const broker = this.get({ kind: 'Broker', name: m.spec.broker });
        if (!broker) return `broker ${m.spec.broker} not found`;
        for (const ref of [m.spec.subscriber.ref, m.spec.delivery?.deadLetterSink?.ref].filter(Boolean)) {
          if (!this.get(ref)) return `${ref.kind}/${ref.name} not found`;
        }
        return this.notReady(broker);
      }
      case 'PingSource':
        return this.get(m.spec.sink.ref) ? undefined : `sink ${m.spec.sink.ref.kind}/${m.spec.sink.ref.name} not found`;
      default:
        return undefined;
    }
  }

  /** Everything deployed is Ready, and every function that needs K_SINK has a binding. */
  problems(): string[] {
    return [...this.objects.values()].flatMap((m) => {
      const why = this.notReady(m);
      return why ? [`${m.kind}/${m.metadata.name}: ${why}`] : [];
    });
  }

  has(kind: string, name: string): boolean {
    return this.objects.has(`${kind}/${name}`);
  }

  private knService(args: Args, line: string): void {
    const [action, name] = args.positional as [string, string];
    if (action === 'delete') return void this.objects.delete(`Service/${name}`);
    const service = read(args.flags.filename!).find((m) => m.kind === 'Service')!;
    const container = service.spec.template.spec.containers[0];
    for (const from of container.envFrom ?? []) if (from.configMapRef) this.need({ kind: 'ConfigMap', name: from.configMapRef.name }, line);
    for (const env of container.env ?? []) if (env.valueFrom?.secretKeyRef) this.need({ kind: 'Secret', name: env.valueFrom.secretKeyRef.name }, line);
    if (this.needSink.includes(name)) {
      const binding = [...this.objects.values()].find((m) => m.kind === 'SinkBinding' && m.spec.subject.name === name);
      if (!binding) throw new Error(`${line}: ${name} starts without K_SINK (no SinkBinding yet) and never becomes Ready`);
      const broker = this.get(binding.spec.sink.ref);
      const why = broker ? this.brokerAddress(broker) : `${binding.spec.sink.ref.name} not found`;
      if (why) throw new Error(`${line}: the SinkBinding's sink has no address (${why}), so ${name} gets no K_SINK and never becomes Ready`);
    }
    this.add(service);
  }

  private brokerAddress(broker: Manifest): string | undefined {
    const config = this.get(broker.spec.config);
    if (!config) return `broker config ${broker.spec.config.name} not found`;
    const cluster = config.spec.rabbitmqClusterReference?.name;
    return cluster && !this.get({ kind: 'RabbitmqCluster', name: cluster }) ? `RabbitmqCluster ${cluster} not found` : undefined;
  }

  private succeeds(command: string[]): boolean {
    const [tool, verb, what] = command;
    if (tool === 'kubectl' && verb === 'get' && what === 'namespace') return this.created;
    if (tool === 'kn' && command.includes('describe')) return this.has(knKinds[verb!]!, command[command.indexOf('describe') + 1]!);
    throw new Error(`the model does not know ${command.join(' ')}`);
  }

  private need(ref: Ref, line: string): Manifest {
    const found = this.get(ref);
    if (!found) throw new Error(`${line}: ${ref.kind}/${ref.name} not found`);
    return found;
  }

  private get(ref: Ref): Manifest | undefined {
    return this.objects.get(`${ref.kind}/${ref.name}`);
  }

  private add(m: Manifest): void {
    this.objects.set(key(m), m);
  }

  private kindOf(lower: string): string {
    return [...this.objects.values()].find((m) => m.kind.toLowerCase() === lower)?.kind ?? capitalize(lower);
  }
}

const key = (m: Manifest) => `${m.kind}/${m.metadata.name}`;
const capitalize = (word: string) => word[0]!.toUpperCase() + word.slice(1);
const read = (file: string): Manifest[] =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((d) => ({ ...(d.toJS() as Manifest), file }));

const knKinds: Record<string, string> = { service: 'Service', broker: 'Broker', source: 'SinkBinding' };
const sinkKinds: Record<string, string> = { ksvc: 'Service', broker: 'Broker' };
function sinkRef(text: string): Ref {
  const [prefix, name] = text.split(':') as [string, string];
  return { kind: sinkKinds[prefix] ?? prefix, name };
}
function brokerConfig(text = ''): Ref {
  const parts = text.split(':');
  return { kind: parts.at(-3)!, name: parts.at(-2)! };
}

interface Args {
  positional: string[];
  flags: Record<string, string | undefined>;
}
function parseArgs(words: string[]): Args {
  const args: Args = { positional: [], flags: {} };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (!word.startsWith('-')) args.positional.push(word);
    else if (word.includes('=')) args.flags[word.replace(/^-+/, '').split('=')[0]!] = word.split('=').slice(1).join('=');
    else if (words[i + 1] === undefined || words[i + 1]!.startsWith('-')) args.flags[word.replace(/^-+/, '')] = '';
    else args.flags[word.replace(/^-+/, '')] = words[++i];
  }
  return args;
}
