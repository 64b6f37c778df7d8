/**
 * tools/admission: the manifests through Knative's own admission code (Serving, Eventing and
 * eventing-rabbitmq), and broken copies that each fail at the layer that rejects them in a cluster.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { describeWithService } from './services';
import { tempDir } from './support';

const checker = join(process.cwd(), '.tools', 'admission');
const goInstalled = spawnSync('go', ['version']).status === 0;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

type Documents = ReturnType<typeof parseAllDocuments>;

/** Copies knative/ and eventing/, edits files of the copy (path → edit), and runs the checker there. */
async function checkCopy(edits: Record<string, (docs: Documents) => void>, paths = ['knative/', 'eventing/']) {
  const dir = await tempDir('admission-');
  cpSync('knative', join(dir, 'knative'), { recursive: true });
  cpSync('eventing', join(dir, 'eventing'), { recursive: true });
  for (const [file, edit] of Object.entries(edits)) {
    const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8'));
    const before = docs.map(String).join('');
    edit(docs);
    const after = docs.map(String).join('');
    expect(after, `the edit of ${file} changed nothing`).not.toBe(before);
    writeFileSync(join(dir, file), after);
  }
  const result = await run(checker, paths, { cwd: dir });
  return { ...result, failures: result.stdout.split('\n').filter((line) => line.startsWith('FAIL')) };
}

const first = (kind: string, docs: Documents) => {
  const doc = docs.find((d) => d.get('kind') === kind);
  if (!doc) throw new Error(`no ${kind} in the manifests`);
  return { doc, name: String(doc.getIn(['metadata', 'name'])) };
};
const parallelism = ['metadata', 'annotations', 'rabbitmq.eventing.knative.dev/parallelism'];

describeWithService('Go', goInstalled, 'admission checker (tools/admission)', () => {
  beforeAll(async () => {
    // The first build compiles Kubernetes and Knative: minutes on two cores.
    const build = await run('make', ['--no-print-directory', '.tools/admission']);
    if (build.status !== 0) throw new Error(`make .tools/admission failed:\n${build.stdout}${build.stderr}`);
  }, 20 * 60_000);

  it('passes the repository manifests, one line per object and a summary', async () => {
    const { status, stdout } = await run(checker, ['knative/', 'eventing/']);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^admission: \d+ objects, 0 errors, \d+ warnings$/);
    expect(lines.slice(0, -1).every((l) => /^(ok  |warn) \S+\/\S+ \(/.test(l)), stdout).toBe(true);
    for (const kind of ['Service', 'Broker', 'Trigger', 'SinkBinding', 'RabbitmqBrokerConfig', 'RabbitmqCluster', 'ConfigMap', 'Secret']) {
      expect(stdout).toMatch(new RegExp(`^ok   ${kind}/`, 'm'));
    }
    expect(status).toBe(0);
  });

  it('rejects an unknown field in a Service (strict decoding)', async () => {
    const result = await checkCopy({ 'knative/convert.yaml': (docs) => first('Service', docs).doc.setIn(['spec', 'template', 'spec', 'containerConcurency'], 1) });
    expect(result.failures).toEqual(['FAIL Service/convert (knative/convert.yaml): strict decoding error: unknown field "spec.template.spec.containerConcurency"']);
    expect(result.stdout).toMatch(/, 1 errors, /);
    expect(result.status).toBe(1);
  });

  it("rejects timeoutSeconds above max-revision-timeout-seconds (Knative Serving's webhook)", async () => {
    const result = await checkCopy({ 'knative/convert.yaml': (docs) => first('Service', docs).doc.setIn(['spec', 'template', 'spec', 'timeoutSeconds'], 601) });
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]).toContain('FAIL Service/convert (knative/convert.yaml): admission webhook "validation.webhook.serving.knative.dev" denied the request');
    expect(result.failures[0]).toContain('expected 0 <= 601 <= 600: spec.template.spec.timeoutSeconds');
    expect(result.status).toBe(1);
  });

  it("prints Knative Serving's warnings (a container without a seccompProfile) and still passes", async () => {
    const result = await checkCopy({
      'knative/convert.yaml': (docs) => {
        const { doc } = first('Service', docs);
        const securityContext = { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
        doc.setIn(['spec', 'template', 'spec', 'containers', 0, 'securityContext'], doc.createNode(securityContext));
      },
    });
    expect(result.stdout).toContain(
      'warn Service/convert (knative/convert.yaml): validation.webhook.serving.knative.dev: Kubernetes default value is insecure, Knative may default this to secure in a future release: spec.template.spec.containers[0].securityContext.seccompProfile',
    );
    expect(result.stdout).toMatch(/, 0 errors, [1-9]\d* warnings/);
    expect(result.status).toBe(0);
  });

  it("rejects a Trigger's parallelism of 0 (eventing-rabbitmq's webhook)", async () => {
    let name = '';
    const result = await checkCopy({
      'eventing/triggers.yaml': (docs) => {
        const trigger = first('Trigger', docs);
        name = trigger.name;
        trigger.doc.setIn(parallelism, '0');
      },
    });
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]).toContain(`FAIL Trigger/${name} (eventing/triggers.yaml): admission webhook "validation.webhook.rabbitmq.eventing.knative.dev" denied the request`);
    expect(result.failures[0]).toContain('expected 1 <= 0 <= 1000: rabbitmq.eventing.knative.dev/parallelism');
    expect(result.status).toBe(1);
  });

  it("leaves parallelism to the Trigger's Broker: not checked when that Broker is not a RabbitMQBroker", async () => {
    const { status, stdout } = await checkCopy(
      {
        'eventing/broker.yaml': (docs) => first('Broker', docs).doc.setIn(['metadata', 'annotations', 'eventing.knative.dev/broker.class'], 'MTChannelBasedBroker'),
        'eventing/triggers.yaml': (docs) => first('Trigger', docs).doc.setIn(parallelism, '0'),
      },
      ['eventing/'],
    );
    expect(stdout).toMatch(/, 0 errors, /);
    expect(status).toBe(0);
  });

  it('rejects queueType: lazy in the RabbitmqBrokerConfig (its CRD schema)', async () => {
    let name = '';
    const result = await checkCopy({
      'eventing/rabbitmq.yaml': (docs) => {
        const config = first('RabbitmqBrokerConfig', docs);
        name = config.name;
        config.doc.setIn(['spec', 'queueType'], 'lazy');
      },
    });
    expect(result.failures).toEqual([
      `FAIL RabbitmqBrokerConfig/${name} (eventing/rabbitmq.yaml): RabbitmqBrokerConfig "${name}" is invalid: spec.queueType: Unsupported value: "lazy": supported values: "quorum", "classic"`,
    ]);
    expect(result.status).toBe(1);
  });

  it("rejects a RabbitMQBroker without spec.config (eventing-rabbitmq's webhook, after Eventing's defaults)", async () => {
    let name = '';
    const result = await checkCopy({
      'eventing/broker.yaml': (docs) => {
        const broker = first('Broker', docs);
        name = broker.name;
        broker.doc.deleteIn(['spec', 'config']);
      },
    });
    // Eventing's defaulting fills spec.config from config-br-defaults (a ConfigMap), which
    // eventing-rabbitmq then refuses.
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]).toContain(`FAIL Broker/${name} (eventing/broker.yaml): admission webhook "validation.webhook.rabbitmq.eventing.knative.dev" denied the request`);
    expect(result.failures[0]).toContain('Configuration not supported');
    expect(result.status).toBe(1);
  });

  it('is a usage error without a path, or with a missing one', async () => {
    expect((await run(checker, [])).status).toBe(2);
    expect((await run(checker, ['no-such-dir/'])).status).toBe(2);
  });
}, 'install Go');

describe('make validate without Go', () => {
  // GO= stands for a machine without Go (the Makefile sets GO from `command -v go`); kubeconform
  // is replaced by `true`: only the admission part is under test here.
  const validate = (env: NodeJS.ProcessEnv) =>
    run('make', ['--no-print-directory', 'validate', 'GO=', 'KUBECONFORM=true'], { env: { ...process.env, CI: '', ...env } });
  const skipped = "make validate: Go is not installed, so Knative's admission checks were skipped (install Go to run them)";

  it('says in one line that the admission checks were skipped, and passes', async () => {
    const { status, stdout } = await validate({});
    expect(stdout.split('\n').filter((line) => line.includes('admission'))).toEqual([skipped]);
    expect(status).toBe(0);
  });

  it('fails in CI', async () => {
    const { status, stderr } = await validate({ CI: 'true' });
    expect(stderr).toContain(skipped);
    expect(status).not.toBe(0);
  });
});
