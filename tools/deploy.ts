/**
 * `make deploy` / `make undeploy`: the kn and kubectl commands that install, update or remove
 * earshot in a namespace, derived from the manifests in knative/ and eventing/ (the source of
 * truth). DRY_RUN=1 prints them instead of running them.
 */
import { spawnSync } from 'node:child_process';
import { readManifests, type Manifest } from '../local/topology';

export interface Target {
  namespace: string;
  registry: string;
  tag: string;
  /** Also deploy mysql-proxy (knative/mysql/), for a self-hosted MySQL instead of PlanetScale. */
  mysqlProxy?: boolean;
}

/** A command, run only if `unless` fails (when given); `mayFail` steps do not stop the run. */
export interface Step {
  command: string[];
  unless?: string[];
  mayFail?: boolean;
}

/**
 * Each step needs only what earlier steps made, on an empty namespace and again on an update:
 * 1. the RabbitMQ cluster and broker config, the ConfigMap, and the operator's Secret;
 * 2. the Broker's dead-letter sink (deadletter), which starts without K_SINK: the Broker
 *    resolves it, and its own SinkBinding comes later (kn has no way round this cycle);
 * 3. the Broker, then a wait until it is Ready (RabbitMQ up, address known, dead-letter sink
 *    resolved): a SinkBinding injects K_SINK only when its sink has an address;
 * 4. the SinkBindings: Knative's webhook resolves a binding's sink when it admits the subject,
 *    so upload, which refuses to start without K_SINK, gets it when it is created next; the
 *    binding patches the already running deadletter, and is waited for (a binding is Ready only
 *    once its subject exists, so upload's is waited for at the end);
 * 5. the other Services (`kn service apply` waits for each to be Ready);
 * 6. the Triggers, whose subscribers now exist, and the PingSource, whose sink (sweeper) now
 *    exists, then a wait for the bindings, Triggers and PingSource.
 * The Broker, SinkBindings and Triggers are applied from their files with kubectl: `kn broker
 * create` and `kn source binding create` drop the files' labels, and kn has no Trigger flags for
 * delivery or annotations. undeployPlan runs the same groups in reverse.
 */
export function deployPlan({ namespace, registry, tag, mysqlProxy = false }: Target): Step[] {
  const { config, rabbitmq, broker, bindings, triggers, pings, first, rest } = layout(mysqlProxy);
  const ns = ['--namespace', namespace];
  const apply = (file: string): Step => ({ command: ['kubectl', 'apply', ...ns, '-f', file] });
  const ready = (objects: Manifest[], timeout: string): Step => ({
    command: ['kubectl', 'wait', ...ns, '--for=condition=Ready', `--timeout=${timeout}`, ...objects.map((m) => `${m.kind.toLowerCase()}/${m.metadata.name}`)],
  });
  const service = (s: Manifest): Step => ({
    command: ['kn', 'service', 'apply', s.metadata.name, '--filename', s.file, '--image', `${registry}/${s.metadata.name}:${tag}`, ...ns],
  });

  return [
    { command: ['kubectl', 'create', 'namespace', namespace], unless: ['kubectl', 'get', 'namespace', namespace] },
    ...fileSteps(rabbitmq, apply),
    apply(config.file),
    // The Secret holds credentials: the operator creates it (from knative/secret.template.yaml).
    { command: ['kubectl', 'get', 'secret', 'earshot-secrets', ...ns, '-o', 'name'] },
    ...first.map(service),
    apply(broker.file),
    // A new RabbitmqCluster takes minutes to start.
    ready([broker], '15m'),
    ...fileSteps(bindings, apply),
    // deadletter's binding: proves the Broker resolves as a sink before anything relies on it.
    ready(bindings.filter((b) => first.some((s) => s.metadata.name === b.spec.subject.name)), '5m'),
    ...rest.map(service),
    ...fileSteps(triggers, apply),
    ...fileSteps(pings, apply),
    ready([...bindings, ...triggers, ...pings], '5m'),
  ];
}

export function undeployPlan({ namespace, mysqlProxy = false }: Target): Step[] {
  const { config, rabbitmq, broker, bindings, triggers, pings, first, rest } = layout(mysqlProxy);
  const ns = ['--namespace', namespace];
  const remove = (file: string): Step => ({ command: ['kubectl', 'delete', ...ns, '--ignore-not-found', '-f', file], mayFail: true });
  const service = (s: Manifest): Step => ({ command: ['kn', 'service', 'delete', s.metadata.name, ...ns], mayFail: true });
  return [
    ...fileSteps(pings, remove),
    ...fileSteps(triggers, remove),
    ...[...rest].reverse().map(service),
    ...fileSteps(bindings, remove),
    remove(broker.file),
    ...first.map(service),
    remove(config.file),
    ...fileSteps(rabbitmq, remove),
  ];
}

/** The manifests, grouped in the order a deploy needs them. */
function layout(mysqlProxy: boolean) {
  const all = [...readManifests('knative'), ...(mysqlProxy ? readManifests('knative/mysql') : []), ...readManifests('eventing')];
  const ofKind = (...kinds: string[]) => all.filter((m) => kinds.includes(m.kind));
  const [broker] = ofKind('Broker');
  const [config] = ofKind('ConfigMap');
  if (!broker || !config) throw new Error('deploy: eventing/ needs a Broker and knative/ a ConfigMap');
  const deadLetterSink = broker.spec.delivery?.deadLetterSink?.ref?.name as string | undefined;
  const services = ofKind('Service');
  // mysql-proxy before login, which reads users through it.
  const rest = services.filter((s) => s.metadata.name !== deadLetterSink).sort((a, b) => Number(b.file.includes('/mysql/')) - Number(a.file.includes('/mysql/')));
  return {
    config,
    rabbitmq: ofKind('RabbitmqCluster', 'RabbitmqBrokerConfig'),
    broker,
    bindings: ofKind('SinkBinding'),
    triggers: ofKind('Trigger'),
    pings: ofKind('PingSource'),
    first: services.filter((s) => s.metadata.name === deadLetterSink),
    rest,
  };
}

/** One step per file that holds any of these objects, in file order. */
const fileSteps = (objects: Manifest[], step: (file: string) => Step) => [...new Set(objects.map((m) => m.file))].map(step);

const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);
export const shellLine = ({ command, unless }: Step) =>
  unless ? `${unless.map(quote).join(' ')} >/dev/null 2>&1 || ${command.map(quote).join(' ')}` : command.map(quote).join(' ');

function run(steps: Step[], dryRun: boolean): number {
  for (const step of steps) {
    console.log(shellLine(step));
    if (dryRun) continue;
    if (step.unless && spawnSync(step.unless[0]!, step.unless.slice(1), { stdio: 'ignore' }).status === 0) continue;
    const { status, error } = spawnSync(step.command[0]!, step.command.slice(1), { stdio: 'inherit' });
    if (error) {
      console.error(`deploy: cannot run ${step.command[0]}: ${error.message}`);
      return 1;
    }
    if (status !== 0 && !step.mayFail) {
      if (step.command.includes('secret')) console.error('deploy: create the Secret first: see knative/secret.template.yaml');
      return status ?? 1;
    }
  }
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [action] = process.argv.slice(2);
  const env = process.env;
  const target = { namespace: env.NAMESPACE || 'earshot', registry: env.REGISTRY ?? '', tag: env.TAG || 'latest', mysqlProxy: env.MYSQL_PROXY === '1' };
  if (action === 'deploy' && !target.registry) {
    console.error('usage: make deploy REGISTRY=registry.example.com/earshot [NAMESPACE=earshot] [TAG=latest] [DRY_RUN=1]');
    process.exit(2);
  }
  const plan = action === 'undeploy' ? undeployPlan(target) : deployPlan(target);
  process.exit(run(plan, env.DRY_RUN === '1'));
}
