/**
 * `make dev`: earshot on one machine, shaped by the same manifests as the Knative deployment.
 * Each function runs as processes behind its own port: one started on demand, another when every
 * one is at its containerConcurrency (up to its max-scale and this machine's cores, or
 * EARSHOT_MAX_INSTANCES), each stopped when idle. The embedded broker routes events per the
 * Triggers; the PingSources ping their Services on schedule (EARSHOT_PING_EVERY_SECONDS=<n>:
 * every n seconds instead); everything lives under DATA_DIR.
 * EARSHOT_BROKER=rabbitmq runs eventing-rabbitmq's real data plane instead (local/dataplane.ts).
 * EARSHOT_IMAGES=<tag> runs each function from its image (`make images TAG=<tag>`) in podman, with
 * only its Service's env: nothing is kept on this machine, so the stores and mail are real servers.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hashPassword } from '../functions/login/password';
import { openUsers } from '../functions/login/users/open';
import { loadPublicKeys, localPrivateJwk } from '../shared/keys';
import { loadLinkKeys } from '../shared/links';
import { createLogger } from '../shared/log';
import { Activator } from './activator';
import { brokerIngress, startDispatch } from './broker';
import { DataPlaneUnavailable, startDataPlane } from './dataplane';
import { startPings } from './ping';
import { containerCommand, existingImages, imageName, podmanAvailable } from './podman';
import { fileQueue } from './queue';
import { readTopology, type FunctionSpec, type Topology } from './topology';

const env = process.env;
const dataDir = resolve(env.DATA_DIR ?? '.earshot');
const basePort = Number(env.EARSHOT_PORT ?? 8080);
const idleMs = Number(env.EARSHOT_IDLE_SECONDS ?? 60) * 1000;
// Knative spreads a Service's pods over nodes; here every instance shares this machine's cores.
const instanceCap = Number(env.EARSHOT_MAX_INSTANCES ?? availableParallelism());
if (!(Number.isInteger(instanceCap) && instanceCap >= 1)) {
  console.error(`EARSHOT_MAX_INSTANCES=${env.EARSHOT_MAX_INSTANCES}: want a whole number of instances, at least 1.`);
  process.exit(1);
}
const pingEverySeconds = env.EARSHOT_PING_EVERY_SECONDS ? Number(env.EARSHOT_PING_EVERY_SECONDS) : undefined;
if (pingEverySeconds !== undefined && !(pingEverySeconds > 0)) {
  console.error(`EARSHOT_PING_EVERY_SECONDS=${env.EARSHOT_PING_EVERY_SECONDS}: want a number of seconds above 0.`);
  process.exit(1);
}
const log = createLogger({ fn: 'local' }, { level: env.LOG_LEVEL });
const manifests = env.EARSHOT_MANIFESTS ?? '.';
const topology = readTopology(manifests);
const brokerKind = env.EARSHOT_BROKER ?? 'embedded';
if (brokerKind !== 'embedded' && brokerKind !== 'rabbitmq') {
  console.error(`EARSHOT_BROKER=${brokerKind}: want embedded (the default) or rabbitmq.`);
  process.exit(1);
}

const imageTag = env.EARSHOT_IMAGES;
if (imageTag) await checkImages(imageTag);
const missing = imageTag ? [] : topology.functions.filter((f) => !existsSync(join('dist', `${f.name}.js`)));
if (missing.length > 0) {
  console.error(`No bundle for ${missing.map((f) => f.name).join(', ')}: run make dev (or make build) first.`);
  process.exit(1);
}

// Addresses, for running the parts on different hosts (test/multihost.test.ts does, with network
// namespaces). EARSHOT_HOST: the address the functions' and the broker's ports listen on, and the
// host of every URL handed out (an IPv4 address or a name); by default loopback, called localhost.
const host = env.EARSHOT_HOST;
// EARSHOT_BROKER=rabbitmq: EARSHOT_DATAPLANE_NETNS runs the ingress and the dispatchers in that
// network namespace (`ip netns`); EARSHOT_INGRESS_HOST is where the ingress is reached there (on the
// broker's port: it listens on every address it has), for K_SINK. By default, on EARSHOT_HOST.
const dataPlaneNetns = brokerKind === 'rabbitmq' ? env.EARSHOT_DATAPLANE_NETNS : undefined;
const ingressHost = brokerKind === 'rabbitmq' ? env.EARSHOT_INGRESS_HOST : undefined;

const listen = async (server: Server, port: number): Promise<number> => {
  await new Promise<void>((done, fail) => server.once('error', fail).listen(port, host ?? '127.0.0.1', done));
  return (server.address() as AddressInfo).port;
};
const urlOf = (port: number, at = host ?? 'localhost') => `http://${at}:${port}`;
const portFor = (index: number) => (basePort === 0 ? 0 : basePort + index);

// The broker's port first (functions that send events get its URL as K_SINK), then every
// function's, so that each can be told where the others are; then the broker itself.
const brokerPort = createServer(); // the embedded ingress; for RabbitMQ's, a hold on the port until it listens there
const brokerUrl = urlOf(await listen(brokerPort, portFor(0)), ingressHost);
const functions = [...topology.functions].sort((a, b) => a.name.localeCompare(b.name));
const servers = functions.map(() => createServer());
const urls: Record<string, string> = {};
for (const [i, fn] of functions.entries()) urls[fn.name] = urlOf(await listen(servers[i]!, portFor(i + 1)));

const deploymentKeys = imageTag ? { ...(await localJwtKeys()), ...(await localLinkKeys()) } : {};
const activators = new Map<string, Activator>();
for (const [i, fn] of functions.entries()) {
  const fnEnv = functionEnv(fn, topology, deploymentKeys);
  const activator = new Activator({
    name: fn.name,
    command: imageTag
      ? containerCommand(fn, imageName(fn.name, imageTag), Object.keys(fnEnv), `earshot.dev=${dataDir}`)
      : [process.execPath, '--enable-source-maps', join('dist', `${fn.name}.js`)],
    // podman finds its helpers on PATH; the container is given only the keys its command names.
    env: imageTag ? { ...fnEnv, PATH: env.PATH ?? '' } : fnEnv,
    containerConcurrency: fn.containerConcurrency,
    maxInstances: fn.maxScale === 0 ? instanceCap : Math.min(fn.maxScale, instanceCap),
    idleMs,
    log,
  });
  activators.set(fn.name, activator);
  servers[i]!.on('request', activator.handle);
}

const broker = brokerKind === 'rabbitmq' ? await startRabbitmqBroker() : await startEmbeddedBroker();
if (broker.pending > 0) log.info('recovered pending deliveries', { count: broker.pending });

const demo = await ensureDemoUser();
const outbox = join(dataDir, 'outbox');
const pings = startPings({
  sources: topology.pingSources,
  resolve: (name) => urls[name] ?? `${brokerUrl}/no-such-service/${name}`,
  timeoutMs: (name) => (topology.functions.find((fn) => fn.name === name)?.timeoutSeconds ?? 300) * 1000,
  log: log.child({ fn: 'pingsource' }),
  everySeconds: pingEverySeconds,
});
printBanner();
log.info('ready', { broker: brokerUrl, brokerKind, ...broker.fields, functions: urls, outbox, dataDir, recovered: broker.pending });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    log.info('stopping', { signal });
    for (const server of servers) server.close();
    await Promise.all([pings.stop(), broker.stop(), ...[...activators.values()].map((a) => a.stop())]);
    process.exit(0);
  });
}

interface Broker {
  /** Events accepted before a restart and not yet delivered. */
  pending: number;
  /** For the ready line. */
  fields: Record<string, unknown>;
  /** For the banner. */
  describe: string;
  stop(): Promise<void>;
}

/** The embedded broker: an ingress on the broker's port, a file queue under DATA_DIR, a dispatcher per Trigger. */
async function startEmbeddedBroker(): Promise<Broker> {
  const queue = await fileQueue(join(dataDir, 'broker'), topology.triggers);
  const pending = Object.values(queue.depth()).reduce((a, b) => a + b, 0);
  brokerPort.on('request', brokerIngress(queue, log.child({ fn: 'broker' })));
  startDispatch({
    queue,
    triggers: topology.triggers,
    resolve: (name) => urls[name] ?? `${brokerUrl}/no-such-service/${name}`,
    timeoutMs: (name) => (topology.functions.find((fn) => fn.name === name)?.timeoutSeconds ?? 300) * 1000,
    log: log.child({ fn: 'broker' }),
  });
  return {
    pending,
    fields: {},
    describe: `embedded broker; ${topology.triggers.length} triggers`,
    stop: async () => {
      brokerPort.close();
      await queue.close();
    },
  };
}

/**
 * RabbitMQBroker's data plane on the broker's port: rabbitmq-topology declares the exchanges,
 * queues and policies in a vhost of this DATA_DIR's, then the ingress and a dispatcher per queue
 * run, supervised, with the env eventing-rabbitmq's controller would give them.
 */
async function startRabbitmqBroker(): Promise<Broker> {
  const { port } = brokerPort.address() as AddressInfo;
  await new Promise((done) => brokerPort.close(done)); // the ingress listens there
  const sinks = [topology.broker.delivery.deadLetterSink, ...topology.triggers.flatMap((t) => [t.subscriber, t.delivery.deadLetterSink])];
  const subscribers = Object.fromEntries([...new Set(sinks)].flatMap((name) => (name && urls[name] ? [[name, urls[name]]] : [])));
  try {
    const plane = await startDataPlane({
      repo: manifests,
      dataDir,
      ingressPort: port,
      ingressHost: ingressHost ?? host,
      netns: dataPlaneNetns,
      subscribers,
      log,
      amqpUrl: env.EARSHOT_RABBITMQ_URL,
      managementUrl: env.EARSHOT_RABBITMQ_MANAGEMENT_URL,
      bin: env.EARSHOT_RABBITMQ_BIN,
    });
    const processes = plane.pids();
    return {
      pending: plane.pending,
      fields: { vhost: plane.vhost, dataPlane: processes },
      describe: `RabbitMQBroker: vhost ${plane.vhost}, ingress + ${Object.keys(processes).length - 1} dispatchers`,
      stop: plane.stop,
    };
  } catch (err) {
    console.error(err instanceof DataPlaneUnavailable ? err.message : `EARSHOT_BROKER=rabbitmq: ${(err as Error).message}`);
    process.exit(1);
  }
}

/**
 * The Service's env with local values: the ConfigMap's settings, minus those that name the
 * deployment (its URLs and keys), which the embedded defaults under DATA_DIR replace. Any of
 * these variables set in make dev's own environment is passed on (MEDIA_URL=… make dev).
 * For an image, the Service's env alone (with `keys`, the JWT and link keys of this DATA_DIR): no
 * path of this machine means anything inside it.
 */
function functionEnv(fn: FunctionSpec, { config }: Topology, keys: Record<string, string>): Record<string, string> {
  const deploymentOnly = new Set(['DOWNLOAD_URL', 'LOGIN_URL', 'UPLOAD_URL', 'CORS_ORIGINS', 'JWT_PUBLIC_KEYS']);
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) if (!deploymentOnly.has(key)) result[key] = value;
  result.DOWNLOAD_URL = urls.download!;
  // The page, on a port of its own, is another origin: as on Knative, it calls the others through CORS.
  result.LOGIN_URL = urls.login!;
  result.UPLOAD_URL = urls.upload!;
  if (urls.web) result.CORS_ORIGINS = new URL(urls.web).origin;
  if (fn.sendsEvents) result.K_SINK = brokerUrl;
  // `keys` are an image's (bundles keep theirs under DATA_DIR): the ConfigMap's, and the Secret's it takes.
  if (keys.JWT_PUBLIC_KEYS) result.JWT_PUBLIC_KEYS = keys.JWT_PUBLIC_KEYS;
  for (const key of ['JWT_PRIVATE_KEY', 'LINK_SIGNING_KEYS']) if (fn.secretEnv.includes(key) && keys[key]) result[key] = keys[key]!;
  const local = imageTag ? [] : ['FFMPEG_PATH'];
  for (const key of [...Object.keys(config), ...fn.secretEnv, ...local, 'MAIL_URL', 'LOG_LEVEL']) {
    if (env[key]) result[key] = env[key]!;
  }
  if (imageTag) return result;
  return { ...result, DATA_DIR: dataDir, PATH: env.PATH ?? '', ...(env.TMPDIR && { TMPDIR: env.TMPDIR }) };
}

/** EARSHOT_IMAGES: podman, the images, and the settings that name real servers (an image keeps nothing here). */
async function checkImages(tag: string): Promise<void> {
  const fail = (message: string) => {
    console.error(`EARSHOT_IMAGES=${tag}: ${message}`);
    process.exit(1);
  };
  if (!podmanAvailable) fail('running the images needs podman, buildah and debootstrap, as root (apt-get install podman buildah debootstrap)');
  const unset = ['MEDIA_URL', 'USERS_DB_URL', 'SENDGRID_API_KEY'].filter((key) => !env[key]);
  if (unset.length > 0) {
    fail(`set ${unset.join(', ')}: the images keep nothing on this machine (MEDIA_URL: a MongoDB, e.g. make services' FerretDB; USERS_DB_URL: make mysql-proxy; SENDGRID_API_KEY, and MAIL_URL for a server speaking SendGrid's API)`);
  }
  const wanted = topology.functions.map((fn) => imageName(fn.name, tag));
  const present = await existingImages(wanted);
  const absent = wanted.filter((name) => !present.has(name));
  if (absent.length > 0) fail(`no image ${absent.join(', ')}: make images TAG=${tag}`);
}

/** The signing key of this DATA_DIR (created on first use) as the Secret and the ConfigMap would hold it; or the pair given. */
async function localJwtKeys(): Promise<Record<string, string>> {
  if (env.JWT_PRIVATE_KEY || env.JWT_PUBLIC_KEYS) {
    if (env.JWT_PRIVATE_KEY && env.JWT_PUBLIC_KEYS) return { JWT_PRIVATE_KEY: env.JWT_PRIVATE_KEY, JWT_PUBLIC_KEYS: env.JWT_PUBLIC_KEYS };
    console.error('Set both JWT_PRIVATE_KEY and JWT_PUBLIC_KEYS (make keys prints a pair), or neither for a local key.');
    process.exit(1);
  }
  return {
    JWT_PRIVATE_KEY: JSON.stringify(await localPrivateJwk(dataDir, 'JWT_PRIVATE_KEY')),
    JWT_PUBLIC_KEYS: JSON.stringify(await loadPublicKeys(undefined, dataDir)),
  };
}

/** The link key set of this DATA_DIR (created on first use), as the Secret would hold it; LINK_SIGNING_KEYS in the env wins (functionEnv). */
async function localLinkKeys(): Promise<Record<string, string>> {
  return { LINK_SIGNING_KEYS: JSON.stringify(await loadLinkKeys(undefined, dataDir)) };
}

async function ensureDemoUser(): Promise<{ email: string; password: string } | undefined> {
  const users = await openUsers(new URL(env.USERS_DB_URL ?? pathToFileURL(join(dataDir, 'users.db')).href));
  try {
    if ('migrate' in users && typeof users.migrate === 'function') await users.migrate(); // MySQL: the table may be new
    if ((await users.count()) > 0) return undefined;
    const user = { email: 'demo@earshot.localhost', password: randomBytes(9).toString('base64url') };
    await users.create({ email: user.email, passwordHash: await hashPassword(user.password), role: 'admin' });
    await mkdir(dataDir, { recursive: true });
    // A local-development credential, kept beside the data it opens.
    await writeFile(join(dataDir, 'demo-user.txt'), `${user.email}\n${user.password}\n`, { mode: 0o600 });
    return user;
  } finally {
    await users.close();
  }
}

function printBanner() {
  const pingedBy = (fn: FunctionSpec) =>
    topology.pingSources
      .filter((p) => p.sink === fn.name)
      .map((p) => `PingSource ${p.name} (${pingEverySeconds ? `every ${pingEverySeconds} s` : p.schedule + (p.timezone ? ` ${p.timezone}` : '')})`);
  const role = (fn: FunctionSpec) =>
    ({ login: 'POST /login', upload: 'POST /upload', download: 'GET /download/:id, GET /jobs[/:id[/events]]', deadletter: 'GET /dead-letters (admin)', web: 'the page' })[fn.name] ??
    (pingedBy(fn).length > 0 ? `pinged by ${pingedBy(fn).join(', ')}` : fn.clusterLocal ? 'called by the broker' : '');
  const lines = [
    '',
    ...(urls.web ? [`Open ${urls.web} in a browser.`, ''] : []),
    `earshot is running; its data is in ${dataDir}`,
    ...functions.map((fn) => `  ${fn.name.padEnd(10)} ${urls[fn.name]!.padEnd(24)} ${role(fn)}`),
    `  ${'broker'.padEnd(10)} ${brokerUrl.padEnd(24)} K_SINK; ${broker.describe}`,
    `  ${'outbox'.padEnd(10)} ${outbox}`,
    demo
      ? `  demo user  ${demo.email} / ${demo.password}   (also in ${join(dataDir, 'demo-user.txt')})`
      : `  users      as before (see ${join(dataDir, 'demo-user.txt')}, or make user-add)`,
    `Functions start on their first request, scale out to their max-scale (at most ${instanceCap} instances each), and stop after ${idleMs / 1000} s idle. Ctrl-C stops it all.`,
    '',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}
