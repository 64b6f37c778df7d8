/**
 * `make bench`: what earshot exists for, measured against its baselines (ratios from runs
 * interleaved in this one process, medians of several). Prints one table and writes it as JSON
 * to .bench/results.json. Numbers never fail the run; `make test` runs every benchmark on tiny
 * inputs (test/bench.test.ts) so that none of them rots.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { closeMongo } from '../shared/mongo';
import { dropDatabase, mongoReachable } from '../test/mongo';
import { benchBroker } from './broker';
import { benchColdStarts } from './coldstart';
import { benchConvert } from './convert';
import { benchAgainstMoviepy, moviepyFfmpeg } from './moviepy';
import { checkFfmpeg, chooseFfmpeg } from '../functions/convert/ffmpeg-binary';
import { benchSegments } from './segments';
import { benchConvertInImage, benchImages, imagesBuilt } from './images';
import { benchDir } from './inputs';
import { benchLoginFlood } from './login-flood';
import { table, type Row } from './measure';
import { benchPipeline } from './pipeline';
import { dataPlaneAvailable } from '../local/dataplane';
import { noRabbitmq } from './rabbitmq';
import { benchRequests } from './requests';
import { benchStreaming, mongoServerName } from './streaming';
import { podmanAvailable } from '../local/podman';

const GiB = 1024 ** 3;
const systemFfmpeg = ['/usr/bin/ffmpeg', '/usr/local/bin/ffmpeg'].find((p) => existsSync(p));
const rows: Row[] = [];
const step = async (name: string, work: () => Promise<Row | Row[]>) => {
  process.stderr.write(`bench: ${name}…\n`);
  try {
    rows.push(...[await work()].flat());
  } catch (err) {
    rows.push({ id: name.slice(0, 2), measure: name, value: NaN, unit: '', target: '', met: false, note: `failed: ${(err as Error).message}` });
  }
};

// Every ffmpeg found here: the npm build (make dev's fallback), the system's, and the static
// build moviepy's venv brings (imageio-ffmpeg): convert's overhead on each, then each against moviepy.
const found: { path: string; label: string }[] = [];
const add = async (path: string, name: string) => {
  const checked = await checkFfmpeg(path);
  if ('version' in checked) found.push({ path, label: `${name} ffmpeg ${checked.version.split(' ')[2]}` });
};
await add(ffmpegInstaller.path, 'npm');
if (systemFfmpeg) await add(systemFfmpeg, 'system');
else rows.push({ id: 'B1', measure: 'convert, system ffmpeg', value: NaN, unit: 's', target: '≤ 1.05×', met: null, note: 'no system ffmpeg (apt-get install ffmpeg)' });
const imageio = await moviepyFfmpeg().catch(() => undefined);
if (imageio) await add(imageio, 'imageio-ffmpeg (PyPI)');
for (const binary of found) await step(`B1 convert (${binary.label})`, () => benchConvert({ seconds: 600, runs: 3, ffmpegPath: binary.path, label: binary.label }));
const chosen = await chooseFfmpeg(process.env, async () => ffmpegInstaller.path);
await step('B1 against moviepy', () => benchAgainstMoviepy({ seconds: 600, runs: 3, paths: found.map((b) => ({ ffmpegPath: b.path, label: b.label, chosen: b.path === chosen.path })) }));
const imageNames = ['convert', 'deadletter', 'download', 'login', 'notify', 'sweeper', 'upload', 'web'];
const images = podmanAvailable && (await imagesBuilt(imageNames));
if (images && (await mongoReachable())) {
  const mediaUrl = `mongodb://127.0.0.1:27018/earshot_bench_image_${process.pid}`;
  await step('B1 convert (in its image)', () => benchConvertInImage({ seconds: 600, runs: 3, mediaUrl }));
  await closeMongo(mediaUrl);
  await dropDatabase(mediaUrl);
} else {
  rows.push({ id: 'B1', measure: 'convert in its image', value: NaN, unit: 's', target: '≤ 1.05×', met: null, note: images ? 'no MongoDB-wire server (make services)' : 'no images: make images first (buildah, podman, debootstrap; as root)' });
}
await step('B2 cold starts', () => benchColdStarts({ names: ['convert', 'deadletter', 'download', 'login', 'notify', 'sweeper', 'upload', 'web'], runs: 10 }));
await step('B3 streaming (files)', () => benchStreaming({ size: GiB, runs: 1, label: 'file store' }));
// make services' FerretDBs: the faster backend on 27018 (the one the tests use), the other on 27019.
for (const port of [27018, 27019]) {
  const mediaUrl = `mongodb://127.0.0.1:${port}/earshot_bench_${process.pid}`;
  const server = await mongoServerName(mediaUrl);
  if (server) {
    await step(`B3 streaming (${server})`, () => benchStreaming({ size: GiB, runs: 1, mediaUrl, label: `GridFS, ${server}` }));
    await closeMongo(mediaUrl);
    await dropDatabase(mediaUrl);
  } else {
    rows.push({ id: 'B3', measure: `stream, MongoDB on 127.0.0.1:${port}`, value: NaN, unit: 'MB/s', target: '≥ 0.5×', met: null, note: 'no MongoDB-wire server (make services)' });
  }
}
// The real broker data plane beside the embedded one, where `make services` has it.
const rabbitmq = await dataPlaneAvailable();
await step('B4 pipeline', () => benchPipeline({ seconds: 30, runs: 3, rabbitmq }));
if (!rabbitmq) rows.push({ id: 'B4', measure: 'pipeline overhead, EARSHOT_BROKER=rabbitmq', value: NaN, unit: 'ms', target: '≤ 100 ms', met: null, note: noRabbitmq });
await step('B5 broker', () => benchBroker({ events: 5000, runs: 3, rabbitmq }));
if (!rabbitmq) rows.push({ id: 'B5', measure: 'embedded broker against eventing-rabbitmq ingress + dispatcher (RabbitMQ)', value: NaN, unit: 'events/s', target: '≥ 0.5×', met: null, note: noRabbitmq });
await step('B6 requests', () => benchRequests({ seconds: 5, runs: 3 }));
await step('B7 stretches at once', () => benchSegments({ seconds: 2400, runs: 3, ffmpegPath: chosen.path, label: `${chosen.source} ffmpeg ${chosen.version.split(' ')[2]}` }));
await step('B9 login during a flood', () => benchLoginFlood({ logins: 20 }));
if (images) {
  await step('B8 images', () => benchImages({ names: imageNames, runs: 5 }));
} else {
  rows.push({ id: 'B8', measure: 'images: size and cold start', value: NaN, unit: '', target: '', met: null, note: 'no images: make images first (buildah, podman, debootstrap; as root)' });
}

const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / GiB).toFixed(0)} GiB, Node ${process.version}`;
console.log(`\nearshot benchmarks (${machine}, ${new Date().toISOString()})\n`);
console.log(table(rows));
await mkdir(benchDir, { recursive: true });
await writeFile(join(benchDir, 'results.json'), `${JSON.stringify({ machine, at: new Date().toISOString(), rows }, null, 2)}\n`);
console.log(`\nwritten to ${join(benchDir, 'results.json')}`);
