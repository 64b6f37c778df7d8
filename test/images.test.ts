/**
 * The images as Knative runs them: built by `make images` (buildah here), run by podman with only
 * the env each Service gives (its ConfigMap, its Secret keys, K_SINK where a SinkBinding binds it,
 * PORT), on a read-only root filesystem with a writable /tmp, as the image's user. Each answers
 * /healthz on $PORT and exits 0 on SIGTERM; a missing setting is one log line and exit 78; convert
 * carries its image's ffmpeg.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { benchConvertInImage, benchImages } from '../bench/images';
import { contained, imageName, podman, podmanAvailable } from '../local/podman';
import { envArgs, functionSpec, mainProcess, output, serviceEnv } from './podman';
import { describeWithService } from './services';
import { dataPlaneAvailable } from '../local/dataplane';
import { EventTypes } from '../shared/events';
import { endToEnd, mailsFor, startRuntime, stopRuntimes, until, waitForJob, type Runner } from './e2e';
import { makeVideo } from './media';
import { dropDatabase, mongoReachable, mongoTestUrl } from './mongo';
import { makeTestDatabase, mysqlReachable, startMysqlProxy } from './mysql';
import { startSendgridStandin } from './sendgrid-standin';
import { freePort, tempDir } from './support';

const tag = 'test';
const image = (fn: string) => imageName(fn, tag);


afterEach(stopRuntimes);

const storesUp = (await Promise.all([mysqlReachable(), mongoReachable()])).every(Boolean);
const dataPlaneUp = await dataPlaneAvailable();

describeWithService('buildah, podman and debootstrap as root (apt-get install buildah podman debootstrap)', podmanAvailable, 'the images', () => {
  beforeAll(async () => {
    // dist/ is the test run's own build (global setup); make images would rebuild it under other suites.
    await promisify(execFile)('bash', ['tools/images.sh'], { env: { ...process.env, TAG: tag, FUNCTIONS: 'convert deadletter download login notify sweeper upload web' } });
    // And one the way docker builds it: the Dockerfile's own build stage (npm ci, the build) in the image.
    await promisify(execFile)('bash', ['tools/images.sh'], { env: { ...process.env, TAG: 'dockerfile', FUNCTIONS: 'login', BUNDLES: 'dockerfile' } });
  }, 1_800_000);

  describe('under the Knative runtime contract', contract);
  describeWithService('MariaDB and FerretDB', storesUp, 'the end-to-end suite, every function in its image, embedded broker', () => {
    endToEnd('embedded', images);
    it('drains on SIGTERM: an upload whose body is still arriving when its container is told to stop is answered 202, and the container exits 0', drainsUpload);
    it('B1 in the image: the convert container against the same ffmpeg command in its root, and that command against the npm ffmpeg', async () => {
      const mediaUrl = mongoTestUrl('b1_image');
      try {
        const rows = await benchConvertInImage({ seconds: 2, runs: 1, mediaUrl, tag });
        expect(rows.map((r) => r.measure)).toEqual([
          expect.stringMatching(/^convert 2-s MP4 in its image as it runs by default \(stretches on every CPU\), FFmpeg 7\.\S+; video and MP3 in GridFS/),
          expect.stringMatching(/^ffmpeg command, 2-s MP4: the image's FFmpeg 7\.\S+ against the npm ffmpeg/),
        ]);
        for (const row of rows) expect(row.value > 0 && row.baseline!.value > 0).toBe(true);
      } finally {
        await dropDatabase(mediaUrl);
      }
    });
    it('EARSHOT_IMAGES: make dev names the settings an image needs and the images that are missing, and stops', async () => {
      const runtime = (env: Record<string, string>) =>
        promisify(execFile)(process.execPath, ['--import', 'tsx', 'local/runtime.ts'], { env: { PATH: process.env.PATH!, EARSHOT_PORT: '0', ...env } }).then(
          () => ({ code: 0, stderr: '' }),
          (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
        );
      const dir = await tempDir();
      expect(await runtime({ DATA_DIR: dir, EARSHOT_IMAGES: tag, MEDIA_URL: 'mongodb://127.0.0.1:27018/x' })).toEqual({
        code: 1,
        stderr: expect.stringMatching(/^EARSHOT_IMAGES=test: set USERS_DB_URL, SENDGRID_API_KEY: the images keep nothing on this machine/),
      });
      const settings = { MEDIA_URL: 'mongodb://127.0.0.1:27018/x', USERS_DB_URL: 'http://u:p@127.0.0.1:1', SENDGRID_API_KEY: 'SG.local-test-only' };
      expect(await runtime({ DATA_DIR: dir, EARSHOT_IMAGES: 'no-such-tag', ...settings })).toEqual({
        code: 1,
        stderr: expect.stringContaining('EARSHOT_IMAGES=no-such-tag: no image localhost/earshot/convert:no-such-tag, localhost/earshot/deadletter:no-such-tag'),
      });
    });
    it('make dev killed with SIGKILL takes its containers with it', async () => {
      const dir = await tempDir();
      const rt = await startRuntime(images, join(dir, 'data')); // its login container is running
      expect(await containersOf(join(dir, 'data'), image('login'))).toHaveLength(1);
      rt.child.kill('SIGKILL');
      // stopRuntimes then waits for none to be left.
    });
  });
  describeWithService('MariaDB, FerretDB and the RabbitMQ data plane', storesUp && dataPlaneUp, 'the end-to-end suite, every function in its image, on RabbitMQ', () => {
    endToEnd('rabbitmq', images);
  });
});

function contract() {
  let envOf: (name: string) => Record<string, string>;
  beforeAll(async () => {
    envOf = await serviceEnv();
  });

  it.each(['convert', 'deadletter', 'download', 'login', 'notify', 'sweeper', 'upload', 'web'])(
    '%s: with only its Service\'s env, on the read-only root its manifest asks for (writable: convert\'s /tmp volume, nothing else): answers /healthz on $PORT, runs as uid 1000 (convert: with FFmpeg 7 at FFMPEG_PATH), exits 0 on SIGTERM',
    async (fn) => {
      expect(functionSpec(fn)).toMatchObject({ readOnlyRootFilesystem: true, emptyDirs: fn === 'convert' ? ['/tmp'] : [] });
      const port = await freePort();
      const child = podman(['run', ...contained(functionSpec(fn)), ...envArgs({ ...envOf(fn), PORT: String(port) }), image(fn)]);
      const { exited, out, err } = output(child);
      try {
        const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve).once('close', () => resolve('')));
        expect(JSON.parse(first || '{}'), err()).toMatchObject({ msg: 'listening', port });
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
        // Seen from this side: the container's main process (the one given this PORT), its user.
        const pid = await mainProcess(port);
        expect(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]).toBe('1000');
        // Its filesystem as it sees it: /tmp writable for convert alone, / for none (not even for root).
        const writable = (dir: string) => writeFile(`/proc/${pid}/root${dir}/earshot-probe`, '').then(() => true, (err: NodeJS.ErrnoException) => (err.code === 'EROFS' ? false : Promise.reject(err)));
        expect(await writable('/tmp')).toBe(fn === 'convert');
        expect(await writable('')).toBe(false);
        if (fn === 'convert') {
          // Its image's ffmpeg, run in the container's own root: Debian 13's FFmpeg 7.
          const ffmpeg = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').find((v) => v.startsWith('FFMPEG_PATH='))?.slice('FFMPEG_PATH='.length);
          expect(ffmpeg).toBe('/usr/bin/ffmpeg');
          const { stdout } = await promisify(execFile)('chroot', [`/proc/${pid}/root`, ffmpeg!, '-version']);
          expect(stdout.split('\n')[0]).toMatch(/^ffmpeg version 7\./);
          // And the one it says it chose, checked at start.
          await until(() => out().includes('"msg":"ffmpeg"'));
          const chosen = out().split('\n').find((line) => line.includes('"msg":"ffmpeg"'))!;
          expect(JSON.parse(chosen)).toMatchObject({ path: '/usr/bin/ffmpeg', source: 'FFMPEG_PATH', version: expect.stringMatching(/^ffmpeg version 7\./) });
        }
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
        expect(out()).not.toMatch(/"level":"error"/);
      } finally {
        child.kill('SIGKILL');
      }
    },
  );

  it("login built by the Dockerfile's own build stage, as docker builds it: the same bundle as make build's, and it serves", async () => {
    const port = await freePort();
    const child = podman(['run', ...contained(functionSpec('login')), ...envArgs({ ...envOf('login'), PORT: String(port) }), imageName('login', 'dockerfile')]);
    const { exited, err } = output(child);
    try {
      const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve).once('close', () => resolve('')));
      expect(JSON.parse(first || '{}'), err()).toMatchObject({ msg: 'listening', port });
      expect((await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)).status).toBe(200);
      const built = await readFile(`/proc/${await mainProcess(port)}/root/app/main.js`, 'utf8');
      expect(built === (await readFile('dist/login.js', 'utf8')), 'the image\'s main.js differs from dist/login.js').toBe(true);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('login without USERS_DB_URL: one invalid-configuration line naming it, exit 78', async () => {
    const { USERS_DB_URL: _unset, ...env } = envOf('login');
    const child = podman(['run', ...contained(functionSpec('login')), ...envArgs({ ...env, PORT: String(await freePort()) }), image('login')]);
    const { exited, out } = output(child);
    expect(await exited).toBe(78);
    const lines = out().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', msg: 'invalid configuration', variable: 'USERS_DB_URL' });
  });

  it('B8 measures each image: compressed size, and container start to the first 200 against the bare bundle', async () => {
    const rows = await benchImages({ names: ['login'], runs: 1, tag });
    expect(rows.map((r) => r.measure)).toEqual(['image size, compressed: login', 'cold start in its container: login']);
    for (const row of rows) expect(row.value).toBeGreaterThan(0);
    expect(rows[1]!.baseline!.value).toBeGreaterThan(0);
  });
}

/**
 * Every function from its image, with only its Service's env: the stores are real servers (a
 * MariaDB database of the runtime's own behind mysql-proxy, a FerretDB database) and mail goes to
 * the SendGrid stand-in. The failing subscriber: notify, while SendGrid answers 500.
 */
const images: Runner = {
  name: 'every function in its image',
  async prepare(dataDir) {
    const suffix = `e2e_${randomUUID().slice(0, 8)}`;
    const database = await makeTestDatabase(suffix);
    const proxy = await startMysqlProxy({ MYSQL_URL: database.mysqlUrl });
    const mediaUrl = mongoTestUrl(suffix);
    const apiKey = 'SG.local-test-only';
    const sendgrid = await startSendgridStandin(apiKey);
    return {
      env: { EARSHOT_IMAGES: tag, MEDIA_URL: mediaUrl, USERS_DB_URL: proxy.url, SENDGRID_API_KEY: apiKey, MAIL_URL: sendgrid.url },
      mails: async () =>
        sendgrid.received
          .filter((m) => m.status === 202)
          .map(({ body }) => ({
            to: body.personalizations[0]!.to[0]!.email,
            subject: body.subject,
            text: body.content.find((c) => c.type === 'text/plain')?.value ?? '',
            jobId: body.custom_args?.jobId ?? '',
          })),
      fault: {
        subscriber: 'notify',
        eventType: EventTypes.audioConverted,
        jobStatus: 'converted',
        env: {},
        arm: () => void (sendgrid.outage = 500),
        fix: async () => void (sendgrid.outage = undefined),
      },
      async close() {
        // The runtime stopped its containers (or podman was told to, when the runtime was killed), and podman removed them.
        let left = await containersOf(dataDir);
        for (const end = Date.now() + 60_000; left.length > 0 && Date.now() < end; left = await containersOf(dataDir)) await new Promise((r) => setTimeout(r, 500));
        expect(left).toEqual([]);
        await Promise.all([sendgrid.close(), proxy.close()]);
        await Promise.all([database.drop(), dropDatabase(mediaUrl)]);
      },
    };
  },
};

/** The containers `make dev` started for this DATA_DIR (its label), running or not; or those of one image. */
async function containersOf(dataDir: string, image?: string): Promise<string[]> {
  const child = podman(['ps', '--all', '--filter', `label=earshot.dev=${dataDir}`, ...(image ? ['--filter', `ancestor=${image}`] : []), '--format', '{{.ID}}']);
  const { exited, out } = output(child);
  await exited;
  return out().split('\n').filter(Boolean);
}

/** The videos' GridFS chunks in the database at `url`, counted on each poll. */
async function storedChunks(url: string) {
  const client = await new MongoClient(url).connect();
  const counter = { count: 0, poll: async () => void (counter.count = await client.db().collection('videos.chunks').countDocuments()), close: () => client.close() };
  return counter;
}

async function drainsUpload() {
  const dir = await tempDir();
  const rt = await startRuntime(images, join(dir, 'data'));
  // A minute: over a megabyte, so that half of it fills GridFS chunks (255 KB) while the rest is held back.
  const video = await readFile(await makeVideo(join(dir, 'v.mp4'), { seconds: 60 }));
  const boundary = `earshot-${randomUUID()}`;
  const head = Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="v.mp4"\r\ncontent-type: video/mp4\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);

  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${rt.ready.functions.upload}/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${rt.token}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + video.length + tail.length },
    });
    req.on('response', async (res) => {
      let body = '';
      for await (const chunk of res) body += chunk;
      resolve({ status: res.statusCode!, body });
    });
    req.on('error', reject);
    // Half the file; once upload is storing it (chunks in GridFS), the signal; then the rest once the
    // container says it is draining.
    req.write(Buffer.concat([head, video.subarray(0, video.length / 2)]));
    void (async () => {
      const chunks = await storedChunks(rt.prepared.env.MEDIA_URL!);
      await until(() => chunks.count > 0, 120_000, chunks.poll);
      await chunks.close();
      // As the kubelet stops a container: SIGTERM to its process.
      const [container] = await containersOf(join(dir, 'data'), image('upload'));
      expect((await output(podman(['kill', '--signal', 'TERM', container!])).exited)).toBe(0);
      await until(() => rt.lines.some((l) => l.fn === 'upload' && l.msg === 'draining'));
      req.end(Buffer.concat([video.subarray(video.length / 2), tail]));
    })().catch(reject);
  });
  const { status, body } = await answer;
  expect(status, body).toBe(202);
  const { videoId } = JSON.parse(body) as { videoId: string };
  // What it accepted while draining goes on through the pipeline: a new upload container takes
  // the next request, and the MP3 and the email follow.
  await waitForJob(rt, videoId, 'converted');
  expect(await mailsFor(rt, videoId, 1)).toHaveLength(1);
  expect(rt.lines).toContainEqual(expect.objectContaining({ msg: 'function exited', function: 'upload', code: 0 }));
}
