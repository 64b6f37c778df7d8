/** `make deploy`/`make undeploy`: the commands, their order replayed on a model namespace; and `make validate`. */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../local/topology';
import { deployPlan, undeployPlan, type Step } from '../tools/deploy';
import { Namespace } from './namespace';
import { tempDir } from './support';

const make = (...args: string[]) => spawnSync('make', ['--no-print-directory', ...args], { encoding: 'utf8' });
const functions = ['convert', 'deadletter', 'download', 'login', 'notify', 'sweeper', 'upload', 'web'];

describe('make deploy DRY_RUN=1', () => {
  const { status, stdout } = make('deploy', 'DRY_RUN=1', 'REGISTRY=registry.example.org/team/earshot', 'NAMESPACE=media', 'TAG=v1.2.3');
  const lines = stdout.trim().split('\n');

  it('prints the commands and runs none', () => {
    expect(status).toBe(0);
    expect(lines.every((l) => /^(kn|kubectl) /.test(l))).toBe(true);
  });

  it('prints, in order, the steps an empty namespace needs', () => {
    expect(lines).toEqual([
      'kubectl get namespace media >/dev/null 2>&1 || kubectl create namespace media',
      'kubectl apply --namespace media -f eventing/rabbitmq.yaml',
      'kubectl apply --namespace media -f knative/config.yaml',
      'kubectl get secret earshot-secrets --namespace media -o name',
      'kn service apply deadletter --filename knative/deadletter.yaml --image registry.example.org/team/earshot/deadletter:v1.2.3 --namespace media',
      'kubectl apply --namespace media -f eventing/broker.yaml',
      'kubectl wait --namespace media --for=condition=Ready --timeout=15m broker/earshot',
      'kubectl apply --namespace media -f knative/sinkbindings.yaml',
      'kubectl wait --namespace media --for=condition=Ready --timeout=5m sinkbinding/deadletter-to-broker',
      ...['convert', 'download', 'login', 'notify', 'sweeper', 'upload', 'web'].map(
        (name) => `kn service apply ${name} --filename knative/${name}.yaml --image registry.example.org/team/earshot/${name}:v1.2.3 --namespace media`,
      ),
      'kubectl apply --namespace media -f eventing/triggers.yaml',
      // The PingSource after its sink, the sweeper Service.
      'kubectl apply --namespace media -f eventing/pingsource.yaml',
      'kubectl wait --namespace media --for=condition=Ready --timeout=5m sinkbinding/upload-to-broker sinkbinding/deadletter-to-broker trigger/convert-on-video-uploaded trigger/notify-on-audio-converted trigger/notify-on-conversion-failed pingsource/sweep',
    ]);
  });

  it('refuses to run without a registry, saying how', () => {
    const result = make('deploy', 'DRY_RUN=1');
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('usage: make deploy REGISTRY=');
  });

  it('says clearly when kubectl or kn is not installed', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'tools/deploy.ts', 'deploy'], {
      encoding: 'utf8',
      env: { PATH: '/nonexistent', REGISTRY: 'registry.example.org/x' },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/deploy: cannot run kubectl/);
  });
});

describe('the deploy plan, replayed on a model namespace', () => {
  const target = { namespace: 'media', registry: 'registry.example.org/x', tag: 'v1' };
  const secret: Manifest = { kind: 'Secret', file: 'knative/secret.template.yaml', metadata: { name: 'earshot-secrets' }, spec: {} };
  // upload exits without K_SINK; deadletter starts without it (test/bundles.test.ts).
  const fresh = () => new Namespace(['upload'], [secret]);
  const replay = (namespace: Namespace, steps: Step[]) => {
    for (const step of steps) namespace.run(step);
    return namespace;
  };
  const plan = deployPlan(target);
  const isBroker = (s: Step) => s.command.includes('eventing/broker.yaml') || s.command.includes('broker/earshot');
  // The bindings' steps: applying them and waiting for deadletter's.
  const bindingSteps = plan.slice(plan.findIndex((s) => s.command.includes('knative/sinkbindings.yaml')), plan.findIndex((s) => s.command.includes('convert')));
  const isBinding = (s: Step) => bindingSteps.includes(s);
  /** The plan with the steps matching `moved` taken out and put back after the last step matching `after`. */
  const move = (steps: Step[], moved: (s: Step) => boolean, after: (s: Step) => boolean) => {
    const kept = steps.filter((s) => !moved(s));
    const at = kept.findLastIndex(after) + 1;
    return [...kept.slice(0, at), ...steps.filter(moved), ...kept.slice(at)];
  };

  it('works on an empty namespace: every step finds what it refers to, and everything ends Ready', () => {
    const namespace = replay(fresh(), plan);
    expect(namespace.problems()).toEqual([]);
    for (const name of functions) expect(namespace.has('Service', name)).toBe(true);
    expect(namespace.has('Broker', 'earshot') && namespace.has('Trigger', 'convert-on-video-uploaded')).toBe(true);
    expect(namespace.has('PingSource', 'sweep')).toBe(true);
  });

  it('fails a plan without the PingSource\'s sink, the sweeper Service', () => {
    const withoutSweeper = plan.filter((s) => !s.command.includes('sweeper'));
    expect(() => replay(fresh(), withoutSweeper)).toThrow(/pingsource\/sweep never becomes Ready \(sink Service\/sweeper not found\)/);
  });

  it('keeps the files\' labels on everything it makes (kn broker create and kn source binding create would drop them)', () => {
    const made = [...replay(fresh(), plan).objects.values()].filter((m) => m.kind !== 'Secret');
    expect(made.length).toBeGreaterThan(10);
    for (const m of made) expect(m.metadata.labels?.['app.kubernetes.io/part-of'], `${m.kind}/${m.metadata.name}`).toBe('earshot');
    const old = fresh();
    replay(old, plan.slice(0, 5));
    old.run({ command: ['kn', 'broker', 'create', 'earshot', '--class', 'RabbitMQBroker', '--dl-sink', 'ksvc:deadletter', '--namespace', 'media'] });
    expect(old.objects.get('Broker/earshot')!.metadata.labels).toBeUndefined();
  });

  it('works again on the namespace it made (an update)', () => {
    expect(replay(replay(fresh(), plan), plan).problems()).toEqual([]);
  });

  it('also works with mysql-proxy', () => {
    expect(replay(fresh(), deployPlan({ ...target, mysqlProxy: true })).problems()).toEqual([]);
  });

  it('fails when the Broker is moved after the bindings: deadletter\'s binding never becomes Ready', () => {
    const broken = move(plan, isBroker, isBinding);
    expect(bindingSteps).toHaveLength(2);
    expect(broken.findIndex(isBroker)).toBeGreaterThan(broken.findLastIndex(isBinding));
    expect(() => replay(fresh(), broken)).toThrow(/sinkbinding\/deadletter-to-broker never becomes Ready \(sink earshot not found\)/);
  });

  it('fails when the Broker comes after upload: upload would start without K_SINK', () => {
    const upload = (s: Step) => s.command.includes('upload');
    const broken = move(plan.filter((s) => !isBinding(s) || s.command[1] === 'apply'), isBroker, upload); // without the binding wait that would stop it first
    expect(() => replay(fresh(), broken)).toThrow(/kn service apply upload .*no address \(.*earshot/);
  });

  it('fails when deadletter comes after the Broker: the Broker never becomes Ready', () => {
    const deadletter = (s: Step) => s.command.includes('deadletter') && s.command[0] === 'kn';
    expect(() => replay(fresh(), move(plan, deadletter, isBroker))).toThrow(/broker\/earshot never becomes Ready \(dead-letter sink Service\/deadletter not found\)/);
  });

  it('fails the old plan: kn source binding create resolves broker:earshot before the Broker exists', () => {
    const ns = ['--namespace', 'media'];
    const old: Step[] = [
      ...plan.slice(0, 4),
      { command: ['kn', 'source', 'binding', 'create', 'upload-to-broker', '--subject', 'Service:serving.knative.dev/v1:upload', '--sink', 'broker:earshot', ...ns], unless: ['kn', 'source', 'binding', 'describe', 'upload-to-broker', ...ns] },
    ];
    expect(() => replay(fresh(), old)).toThrow(/Broker\/earshot not found/);
  });

  it('fails a Trigger whose subscriber does not exist', () => {
    const namespace = replay(fresh(), plan.slice(0, -1).filter((s) => !s.command.includes('notify')));
    expect(namespace.problems()).toContainEqual(expect.stringMatching(/Trigger\/notify-on-audio-converted: Service\/notify not found/));
  });

  it('undeploys in the reverse order, leaving only the operator\'s Secret', () => {
    const namespace = replay(fresh(), plan);
    const undeploy = undeployPlan(target);
    const object = (s: Step) => (s.command[0] === 'kn' ? s.command[3] : s.command.at(-1));
    const created = plan.filter((s) => s.command.includes('apply')).map(object);
    const removed = undeploy.map(object);
    expect(removed).toEqual(created.reverse());
    replay(namespace, undeploy);
    expect([...namespace.objects.keys()]).toEqual(['Secret/earshot-secrets']);
  });
});

describe('make deploy DRY_RUN=1 MYSQL_PROXY=1', () => {
  it('also applies mysql-proxy, for a self-hosted MySQL; without the flag it does not', () => {
    const line = 'kn service apply mysql-proxy --filename knative/mysql/mysql-proxy.yaml --image registry.example.org/x/mysql-proxy:latest --namespace earshot';
    expect(make('deploy', 'DRY_RUN=1', 'REGISTRY=registry.example.org/x', 'MYSQL_PROXY=1').stdout.split('\n')).toContain(line);
    expect(make('deploy', 'DRY_RUN=1', 'REGISTRY=registry.example.org/x').stdout).not.toContain('mysql-proxy');
  });
});

describe('make undeploy DRY_RUN=1', () => {
  const { status, stdout } = make('undeploy', 'DRY_RUN=1', 'NAMESPACE=media');
  const lines = stdout.trim().split('\n');

  it('removes everything it deployed, the PingSource and triggers first and the RabbitMQ cluster last', () => {
    expect(status).toBe(0);
    expect(lines[0]).toBe('kubectl delete --namespace media --ignore-not-found -f eventing/pingsource.yaml');
    expect(lines[1]).toBe('kubectl delete --namespace media --ignore-not-found -f eventing/triggers.yaml');
    expect(lines).toContain('kubectl delete --namespace media --ignore-not-found -f eventing/broker.yaml');
    for (const name of functions) expect(lines).toContain(`kn service delete ${name} --namespace media`);
    expect(lines).toContain('kubectl delete --namespace media --ignore-not-found -f knative/sinkbindings.yaml');
    expect(lines.at(-1)).toBe('kubectl delete --namespace media --ignore-not-found -f eventing/rabbitmq.yaml');
    expect(lines.some((l) => l.includes('secret'))).toBe(false); // the operator's Secret stays
  });
});

describe('make validate', () => {
  // The first run builds the admission checker (make test builds it before vitest starts).
  it('passes on the manifests', { timeout: 20 * 60_000 }, () => {
    const result = make('validate');
    expect(result.stdout + result.stderr).toMatch(/Valid: \d+, Invalid: 0, Errors: 0/);
    expect(result.status).toBe(0);
  });

  it('fails a manifest with a field the schema does not know (strict mode)', async () => {
    const dir = await tempDir();
    cpSync('knative', join(dir, 'knative'), { recursive: true });
    cpSync('eventing', join(dir, 'eventing'), { recursive: true });
    writeFileSync(
      join(dir, 'knative', 'broken.yaml'),
      'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: { name: broken }\nspec:\n  template:\n    spec:\n      containerConcurency: 1\n      containers: [{ image: x }]\n',
    );
    const kubeconform = existsSync('.tools/kubeconform') ? join(process.cwd(), '.tools/kubeconform') : 'kubeconform';
    const schemas = join(process.cwd(), 'tools', 'k8s-schemas');
    const result = spawnSync('make', ['--no-print-directory', '-f', join(process.cwd(), 'Makefile'), 'validate', `KUBECONFORM=${kubeconform}`, `SCHEMAS=${schemas}`], { cwd: dir, encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stdout).toMatch(/broken.*containerConcurency/s);
  });
});
