/**
 * `make deploy` / `make undeploy`: the kn and kubectl commands that install, update or remove
 * earshot in a namespace, derived from the manifests in knative/ and eventing/ (the source of
 * truth). DRY_RUN=1 prints them instead of running them.
 */
import { spawnSync } from 'node:child_process';
import { readManifests } from '../local/topology';

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

const refToSink = (ref: { kind: string; name: string }) => `${ref.kind === 'Service' ? 'ksvc' : ref.kind.toLowerCase()}:${ref.name}`;

export function deployPlan({ namespace, registry, tag, mysqlProxy = false }: Target): Step[] {
  const all = [...readManifests('knative'), ...(mysqlProxy ? readManifests('knative/mysql') : []), ...readManifests('eventing')];
  const ns = ['--namespace', namespace];
  const services = all.filter((m) => m.kind === 'Service');
  const bindings = all.filter((m) => m.kind === 'SinkBinding');
  const [broker] = all.filter((m) => m.kind === 'Broker');
  if (!broker) throw new Error('no Broker in eventing/');
  const config = all.find((m) => m.kind === 'ConfigMap')!;
  const delivery = broker.spec.delivery;

  return [
    { command: ['kubectl', 'create', 'namespace', namespace], unless: ['kubectl', 'get', 'namespace', namespace] },
    { command: ['kubectl', 'apply', ...ns, '-f', 'eventing/rabbitmq.yaml'] },
    { command: ['kubectl', 'apply', ...ns, '-f', config.file] },
    // The Secret holds credentials: the operator creates it (from knative/secret.template.yaml).
    { command: ['kubectl', 'get', 'secret', 'earshot-secrets', ...ns, '-o', 'name'] },
    ...bindings.flatMap((b): Step[] => {
      const flags = [
        '--subject', `${b.spec.subject.kind}:${b.spec.subject.apiVersion}:${b.spec.subject.name}`,
        '--sink', refToSink(b.spec.sink.ref),
        ...ns,
      ];
      return [
        { command: ['kn', 'source', 'binding', 'create', b.metadata.name, ...flags], unless: ['kn', 'source', 'binding', 'describe', b.metadata.name, ...ns] },
        { command: ['kn', 'source', 'binding', 'update', b.metadata.name, ...flags] },
      ];
    }),
    ...services.map((s): Step => ({
      command: ['kn', 'service', 'apply', s.metadata.name, '--filename', s.file, '--image', `${registry}/${s.metadata.name}:${tag}`, ...ns],
    })),
    {
      command: [
        'kn', 'broker', 'create', broker.metadata.name,
        '--class', broker.metadata.annotations!['eventing.knative.dev/broker.class']!,
        '--broker-config', `${broker.spec.config.apiVersion}:${broker.spec.config.kind}:${broker.spec.config.name}:${namespace}`,
        '--retry', String(delivery.retry),
        '--backoff-policy', delivery.backoffPolicy,
        '--backoff-delay', delivery.backoffDelay,
        '--dl-sink', refToSink(delivery.deadLetterSink.ref),
        ...ns,
      ],
      // A broker's spec is immutable: create it once, recreate it to change it.
      unless: ['kn', 'broker', 'describe', broker.metadata.name, ...ns],
    },
    // kn has no flags for Trigger delivery or annotations.
    { command: ['kubectl', 'apply', ...ns, '-f', 'eventing/triggers.yaml'] },
  ];
}

export function undeployPlan({ namespace, mysqlProxy = false }: Target): Step[] {
  const all = [...readManifests('knative'), ...(mysqlProxy ? readManifests('knative/mysql') : []), ...readManifests('eventing')];
  const ns = ['--namespace', namespace];
  const named = (kind: string) => all.filter((m) => m.kind === kind).map((m) => m.metadata.name);
  return [
    { command: ['kubectl', 'delete', ...ns, '--ignore-not-found', '-f', 'eventing/triggers.yaml'], mayFail: true },
    ...named('Broker').map((name) => ({ command: ['kn', 'broker', 'delete', name, ...ns], mayFail: true })),
    ...named('Service').map((name) => ({ command: ['kn', 'service', 'delete', name, ...ns], mayFail: true })),
    ...named('SinkBinding').map((name) => ({ command: ['kn', 'source', 'binding', 'delete', name, ...ns], mayFail: true })),
    { command: ['kubectl', 'delete', ...ns, '--ignore-not-found', '-f', 'knative/config.yaml'], mayFail: true },
    { command: ['kubectl', 'delete', ...ns, '--ignore-not-found', '-f', 'eventing/rabbitmq.yaml'], mayFail: true },
  ];
}

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
