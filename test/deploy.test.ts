/** `make deploy`/`make undeploy` with DRY_RUN=1: the right kn and kubectl commands, flags and order; and `make validate`. */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './support';

const make = (...args: string[]) => spawnSync('make', ['--no-print-directory', ...args], { encoding: 'utf8' });
const functions = ['convert', 'deadletter', 'download', 'login', 'notify', 'upload'];

describe('make deploy DRY_RUN=1', () => {
  const { status, stdout } = make('deploy', 'DRY_RUN=1', 'REGISTRY=registry.example.org/team/earshot', 'NAMESPACE=media', 'TAG=v1.2.3');
  const lines = stdout.trim().split('\n');
  const index = (pattern: RegExp) => lines.findIndex((line) => pattern.test(line));

  it('prints the commands and runs none', () => {
    expect(status).toBe(0);
    expect(lines.every((l) => /^(kn|kubectl) /.test(l))).toBe(true);
  });

  it('creates the namespace only if it is missing', () => {
    expect(lines[0]).toBe('kubectl get namespace media >/dev/null 2>&1 || kubectl create namespace media');
  });

  it('applies the RabbitMQ cluster, broker config and ConfigMap, and checks for the Secret', () => {
    expect(lines).toContain('kubectl apply --namespace media -f eventing/rabbitmq.yaml');
    expect(lines).toContain('kubectl apply --namespace media -f knative/config.yaml');
    expect(lines).toContain('kubectl get secret earshot-secrets --namespace media -o name');
  });

  it('binds K_SINK with kn source binding, creating it once and updating it after', () => {
    expect(lines).toContain(
      'kn source binding describe upload-to-broker --namespace media >/dev/null 2>&1 || kn source binding create upload-to-broker --subject Service:serving.knative.dev/v1:upload --sink broker:earshot --namespace media',
    );
    expect(lines).toContain('kn source binding update upload-to-broker --subject Service:serving.knative.dev/v1:upload --sink broker:earshot --namespace media');
  });

  it.each(functions)('applies the %s Service from its manifest with the pushed image', (name) => {
    expect(lines).toContain(`kn service apply ${name} --filename knative/${name}.yaml --image registry.example.org/team/earshot/${name}:v1.2.3 --namespace media`);
  });

  it('creates the RabbitMQ broker once, with its config, retries, backoff and dead-letter sink', () => {
    expect(lines).toContain(
      'kn broker describe earshot --namespace media >/dev/null 2>&1 || kn broker create earshot --class RabbitMQBroker --broker-config eventing.knative.dev/v1alpha1:RabbitmqBrokerConfig:earshot-broker-config:media --retry 5 --backoff-policy exponential --backoff-delay PT1S --dl-sink ksvc:deadletter --namespace media',
    );
  });

  it('applies the Triggers as YAML (kn has no flags for their delivery and annotations)', () => {
    expect(lines.at(-1)).toBe('kubectl apply --namespace media -f eventing/triggers.yaml');
  });

  it('orders the steps so that each finds what it refers to', () => {
    const config = index(/-f knative\/config.yaml/);
    const secret = index(/get secret/);
    const binding = index(/source binding create upload-to-broker/);
    const firstService = index(/kn service apply/);
    const deadletter = index(/kn service apply deadletter/);
    const upload = index(/kn service apply upload/);
    const broker = index(/kn broker create/);
    const triggers = index(/triggers.yaml/);
    expect(index(/rabbitmq.yaml/)).toBeLessThan(broker);
    expect(config).toBeLessThan(firstService); // env from the ConfigMap
    expect(secret).toBeLessThan(firstService);
    expect(binding).toBeLessThan(upload); // upload needs K_SINK at start
    expect(deadletter).toBeLessThan(broker); // the broker's dead-letter sink
    expect(broker).toBeLessThan(triggers);
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

  it('removes everything it deployed, triggers first and the RabbitMQ cluster last', () => {
    expect(status).toBe(0);
    expect(lines[0]).toBe('kubectl delete --namespace media --ignore-not-found -f eventing/triggers.yaml');
    expect(lines).toContain('kn broker delete earshot --namespace media');
    for (const name of functions) expect(lines).toContain(`kn service delete ${name} --namespace media`);
    expect(lines).toContain('kn source binding delete upload-to-broker --namespace media');
    expect(lines.at(-1)).toBe('kubectl delete --namespace media --ignore-not-found -f eventing/rabbitmq.yaml');
    expect(lines.some((l) => l.includes('secret'))).toBe(false); // the operator's Secret stays
  });
});

describe('make validate', () => {
  it('passes on the manifests', () => {
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
    const schemas = join(process.cwd(), '..', 'shared', 'k8s-schemas');
    const result = spawnSync('make', ['--no-print-directory', '-f', join(process.cwd(), 'Makefile'), 'validate', `KUBECONFORM=${kubeconform}`, `SCHEMAS=${schemas}`], { cwd: dir, encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stdout).toMatch(/broken.*containerConcurency/s);
  });
});
