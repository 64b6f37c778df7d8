/**
 * The real kn CLI accepts every kn command `make deploy` and `make undeploy` run (tools/deploy.ts):
 * each subcommand, flag and flag value. The commands come from deployPlan/undeployPlan at test time;
 * kn is built from tools/kn (knative.dev/client, pinned in tools/kn/go.mod) into .tools/kn, and run
 * without a cluster, twice:
 * - against an unreachable API server (127.0.0.1:9). kn checks subcommands, flags, typed values
 *   (--retry), sink prefixes and --filename before it connects: a command it accepts fails with
 *   "connection refused", one it rejects with its own message.
 * - against a stub API server. kn resolves --sink/--dl-sink, and reads the object it updates, before
 *   it parses --subject and --broker-config, so only a server that answers those reads gets kn that
 *   far. The stub answers reads of Knative objects and refuses every write: a command kn accepts ends
 *   with the stub's refusal of its create, update or delete (or, for describe, succeeds).
 * Negative controls, copies of plan commands with a misspelled flag or a bad value, show that each
 * check fails when kn rejects a command.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployPlan, shellLine, undeployPlan } from '../tools/deploy';
import { describeWithService } from './services';
import { tempDir } from './support';

const root = fileURLToPath(new URL('..', import.meta.url));
const moduleDir = join(root, 'tools/kn');
const kn = join(root, '.tools/kn');

const target = { namespace: 'media', registry: 'registry.example.org/x', tag: 'v1', mysqlProxy: true };
const steps = [...deployPlan(target), ...undeployPlan(target)];
/** Every kn command of both plans, `unless` checks included, each once. */
const commands = [
  ...new Map(steps.flatMap((s) => [s.unless, s.command]).filter((c): c is string[] => c?.[0] === 'kn').map((c) => [c.join('\0'), c])).values(),
];
const line = (command: string[]) => shellLine({ command });

// What kn prints for an argument it rejects, from cobra/pflag: an unknown subcommand or flag, a value
// of the wrong type, a missing one. kn's own checks of values have their own messages, hence the
// positive checks below: a command kn accepts reaches the server.
const argumentError = /unknown (sub-command|command|flag|shorthand flag)|invalid argument|flag needs an argument|required flag|bad flag syntax|Usage:/;
const unreachable = 'https://127.0.0.1:9';
const connectionRefused = /dial tcp 127\.0\.0\.1:9: connect: connection refused/;
const writeRefused = /kn-stub refused (POST|PUT|PATCH|DELETE) /;

/** Bad values for the plan's flags; `early`: kn rejects them before it connects. */
const badValues: { flag: string; value: (good: string) => string; why: string; early: boolean }[] = [
  { flag: '--retry', value: () => 'abc', why: 'not a number', early: true },
  { flag: '--dl-sink', value: (good) => `svc:${good.split(':').at(-1)}`, why: 'svc: prefix (kn wants ksvc:)', early: true },
  { flag: '--sink', value: (good) => `svc:${good.split(':').at(-1)}`, why: 'svc: prefix (kn wants ksvc:)', early: true },
  { flag: '--filename', value: () => 'knative/no-such-file.yaml', why: 'a missing file', early: true },
  { flag: '--subject', value: (good) => `${good.split(':')[0]}:${good.split(':').at(-1)}`, why: 'kind:name, no apiVersion', early: false },
  { flag: '--broker-config', value: () => 'NoSuchKind:earshot', why: 'kind:name of a kind kn cannot give an apiVersion', early: false },
  { flag: '--dl-sink', value: (good) => `nosuchkind:${good.split(':').at(-1)}`, why: 'a kind the cluster does not have', early: false },
];

interface Control {
  name: string;
  command: string[];
  early: boolean;
}

/** Copies of plan commands that kn must reject: one with a misspelled flag, one per bad value that applies. */
function controls(): Control[] {
  const out: Control[] = [];
  const isFlag = (a: string) => a.startsWith('--') && a !== '--namespace';
  const flagged = commands.find((c) => c.some(isFlag));
  if (flagged) {
    const i = flagged.findIndex(isFlag);
    const flag = flagged[i]!;
    // Two letters swapped: --class becomes --calss.
    const swapped = `${flag.slice(0, 3)}${flag.slice(4, 5)}${flag.slice(3, 4)}${flag.slice(5)}`;
    const misspelled = swapped === flag ? `${flag}x` : swapped;
    out.push({ name: `misspelled flag ${misspelled}`, command: flagged.with(i, misspelled), early: true });
  }
  for (const { flag, value, why, early } of badValues) {
    const command = commands.find((c) => c.slice(0, -1).includes(flag));
    if (!command) continue;
    const i = command.indexOf(flag) + 1;
    const bad = value(command[i]!);
    out.push({ name: `bad value ${flag} ${bad} (${why})`, command: command.with(i, bad), early });
  }
  return out;
}

function upToDate(): boolean {
  return existsSync(kn) && ['go.mod', 'go.sum'].every((f) => statSync(kn).mtimeMs >= statSync(join(moduleDir, f)).mtimeMs);
}

interface Result {
  code: number | null;
  output: string;
}

function run(file: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeout: number }): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { ...options, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, output: `${stdout}${stderr}${error && code === null ? `\n${error.message}` : ''}` });
    });
  });
}

/** Builds .tools/kn (a cold build takes minutes); into a temp file first, as another run may be using it. */
async function buildKn(): Promise<void> {
  const version = /^\s*knative\.dev\/client (v\S+)/m.exec(readFileSync(join(moduleDir, 'go.mod'), 'utf8'))?.[1] ?? 'unknown';
  const tmp = `${kn}.${process.pid}.tmp`;
  mkdirSync(dirname(kn), { recursive: true });
  console.info(`building kn ${version} from tools/kn into .tools/kn (a cold build takes minutes)`);
  const { code, output } = await run(
    'go',
    ['build', '-ldflags', `-X knative.dev/client/pkg/kn/commands/version.Version=${version}`, '-o', tmp, 'knative.dev/client/cmd/kn'],
    // The checksum database lacks some knative.dev versions.
    { cwd: moduleDir, env: { ...process.env, GONOSUMDB: 'knative.dev', GOFLAGS: '-mod=mod' }, timeout: 24 * 60_000 },
  );
  if (code !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot build kn (cd tools/kn && go build knative.dev/client/cmd/kn):\n${output}`);
  }
  renameSync(tmp, kn);
}

// The Knative resources of a cluster with Serving and Eventing: the stub has one of each name asked
// for, and nothing else.
const kinds: Record<string, string> = {
  'serving.knative.dev/v1/services': 'Service',
  'eventing.knative.dev/v1/brokers': 'Broker',
  'eventing.knative.dev/v1/triggers': 'Trigger',
  'messaging.knative.dev/v1/channels': 'Channel',
  'sources.knative.dev/v1/sinkbindings': 'SinkBinding',
};

/** Answers reads of Knative objects, refuses every write (with a message the tests look for). */
function stubApiServer(): Server {
  return createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://stub').pathname;
      const send = (code: number, body: object) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const status = (code: number, reason: string, message: string) => send(code, { apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason, message });
      if (req.method !== 'GET') return status(403, 'Forbidden', `kn-stub refused ${req.method} ${path}`);
      const [, apiVersion, namespace, resource, name] = /^\/apis\/([^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path) ?? [];
      const kind = kinds[`${apiVersion}/${resource}`];
      if (!kind) return status(404, 'NotFound', `kn-stub has no ${path}`);
      send(200, {
        apiVersion,
        kind,
        metadata: { name, namespace, uid: 'kn-stub', resourceVersion: '1', generation: 1 },
        // kn service apply needs the existing Service to have a container.
        ...(kind === 'Service' ? { spec: { template: { spec: { containers: [{ image: 'kn-stub' }] } } } } : {}),
      });
    });
  });
}

const kubeconfig = (server: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server } }],
    users: [{ name: 'test', user: { token: 'not-a-token' } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'test', namespace: 'default' } }],
    'current-context': 'test',
  });

const haveKn = upToDate() || spawnSync('go', ['version']).status === 0;

describeWithService('Go', haveKn, 'the real kn CLI', () => {
  let dir: string;
  let stub: Server;
  const kubeconfigs = { unreachable: '', stub: '' };

  beforeAll(async () => {
    if (!upToDate()) await buildKn();
    dir = await tempDir('kn-');
    stub = stubApiServer();
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    kubeconfigs.unreachable = join(dir, 'unreachable.kubeconfig');
    kubeconfigs.stub = join(dir, 'stub.kubeconfig');
    writeFileSync(kubeconfigs.unreachable, kubeconfig(unreachable));
    writeFileSync(kubeconfigs.stub, kubeconfig(`http://127.0.0.1:${(stub.address() as AddressInfo).port}`));
  }, 25 * 60_000);

  afterAll(() => new Promise<void>((resolve) => (stub ? stub.close(() => resolve()) : resolve())));

  // From the repository root, where --filename paths are; HOME in the temp dir, so no kn config or
  // plugins of the user's take part.
  const runKn = (args: string[], cluster: keyof typeof kubeconfigs) =>
    run(kn, args, { cwd: root, env: { ...process.env, KUBECONFIG: kubeconfigs[cluster], HOME: dir, XDG_CONFIG_HOME: join(dir, '.config') }, timeout: 50_000 });

  const all = controls();

  it('finds kn commands in the plans, and a misspelled flag and a bad value to check against', () => {
    expect(commands.length).toBeGreaterThan(0);
    expect(all.filter((c) => c.early).map((c) => c.name.split(' ')[0])).toEqual(expect.arrayContaining(['misspelled', 'bad']));
  });

  describe('with an unreachable API server, gets as far as connecting on', () => {
    for (const command of commands) {
      it(line(command), async () => {
        const { code, output } = await runKn(command.slice(1), 'unreachable');
        expect(output).toMatch(connectionRefused);
        expect(output).not.toMatch(argumentError);
        expect(code).toBe(1);
      }, 60_000);
    }

    for (const control of all.filter((c) => c.early)) {
      it(`but rejects, with a ${control.name}: ${line(control.command)}`, async () => {
        const { code, output } = await runKn(control.command.slice(1), 'unreachable');
        expect(output).toMatch(/^Error: /m);
        expect(output).not.toMatch(connectionRefused);
        expect(code).not.toBe(0);
      }, 60_000);
    }
  });

  describe('with a stub API server, gets as far as its create, update or delete (or succeeds) on', () => {
    for (const command of commands) {
      it(line(command), async () => {
        const { code, output } = await runKn(command.slice(1), 'stub');
        if (code !== 0) expect(output).toMatch(writeRefused);
        expect(output).not.toMatch(argumentError);
      }, 60_000);
    }

    for (const control of all) {
      it(`but rejects, with a ${control.name}: ${line(control.command)}`, async () => {
        const { code, output } = await runKn(control.command.slice(1), 'stub');
        expect(output).toMatch(/^Error: /m);
        expect(output).not.toMatch(writeRefused);
        expect(code).not.toBe(0);
      }, 60_000);
    }
  });
}, 'install Go (https://go.dev/dl/); the test builds kn from tools/kn');
