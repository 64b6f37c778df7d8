/** Every function bundle builds, holds only what it imports, starts with only its env on the images' Node, and drains on SIGTERM. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenIssuer } from '../functions/login/tokens';
import { loadSigningKey } from '../shared/keys';
import { generateLinkKey } from '../shared/links';
import { functionNames } from '../tools/build';
import { ffmpegPath, makeVideo } from './media';
import { imageNode, imageNodeMajor } from './image-node';
import { startBundle } from './processes';
import { describeWithService } from './services';
import { audience, tempDir } from './support';

const exitCode = async (child: ChildProcess): Promise<number | null> => child.exitCode ?? ((await once(child, 'exit')) as [number | null])[0];

describe('function bundles', () => {
  let meta: Metafile;
  let names: string[];
  let dataDir: string;
  const env: Record<string, Record<string, string>> = {
    upload: { K_SINK: 'http://127.0.0.1:9/' },
    // None: on Knative it starts before the SinkBinding that gives it K_SINK (see tools/deploy.ts).
    deadletter: {},
    'mysql-proxy': { MYSQL_URL: 'mysql://127.0.0.1:3307/earshot' },
    notify: { DOWNLOAD_URL: 'http://127.0.0.1:8085' },
    web: { LOGIN_URL: 'http://127.0.0.1:8084', UPLOAD_URL: 'http://127.0.0.1:8086', DOWNLOAD_URL: 'http://127.0.0.1:8083' },
  };

  beforeAll(async () => {
    names = await functionNames();
    meta = JSON.parse(await readFile('dist/meta.json', 'utf8')) as Metafile; // built by test/global-setup.ts
    dataDir = await tempDir();
  });

  it('has one bundle per function', () => {
    expect(names).toEqual(['convert', 'deadletter', 'download', 'login', 'notify', 'sweeper', 'upload', 'web']);
    for (const name of [...names, 'mysql-proxy']) expect(meta.outputs[`dist/${name}.js`]).toBeDefined();
  });

  it('puts heavy dependencies only into the functions that use them', () => {
    const bundles = [...names, 'mysql-proxy'];
    const packages = (name: string) =>
      new Set(Object.keys(meta.outputs[`dist/${name}.js`]!.inputs).map((file) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1]).filter(Boolean));
    const owners: Record<string, string[]> = {
      'fluent-ffmpeg': ['convert'],
      busboy: ['upload'],
      'file-type': ['upload'],
      '@sendgrid/mail': ['notify'],
      '@planetscale/database': ['login'],
      mysql2: ['mysql-proxy'],
      'range-parser': ['download'],
      jose: ['deadletter', 'download', 'login', 'notify', 'upload'],
    };
    for (const [pkg, users] of Object.entries(owners)) {
      expect(bundles.filter((name) => packages(name).has(pkg)), pkg).toEqual(users);
    }
  });

  it.each(['convert', 'deadletter', 'download', 'login', 'notify', 'sweeper', 'upload', 'web', 'mysql-proxy'])('%s starts from node dist/<name>.js with only its env vars and answers /healthz', async (name) => {
    const { child, url } = await startBundle(name, { DATA_DIR: dataDir, ...env[name] });
    try {
      const res = await fetch(`${url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    } finally {
      child.kill('SIGTERM');
      expect(await exitCode(child)).toBe(0);
    }
  });

  it.each([
    ['upload', 'K_SINK', {}],
    ['notify', 'DOWNLOAD_URL', {}],
    ['web', 'LOGIN_URL', {}],
    ['upload', 'CORS_ORIGINS', { K_SINK: 'http://127.0.0.1:9/', CORS_ORIGINS: 'https://web.example/' }],
    ['convert', 'FFMPEG_PATH', { FFMPEG_PATH: '/nonexistent/ffmpeg' }],
    ['download', 'MEDIA_URL', { MEDIA_URL: 'ftp://example/media' }],
    ['download', 'LINK_SIGNING_KEYS', { LINK_SIGNING_KEYS: JSON.stringify({ keys: [{ kty: 'oct', kid: 'short', k: 'c2hvcnQ' }] }) }],
    ['notify', 'LINK_TTL_SECONDS', { DOWNLOAD_URL: 'http://127.0.0.1:8085', LINK_TTL_SECONDS: 'a week' }],
    ['login', 'JWT_TTL_SECONDS', { JWT_TTL_SECONDS: 'forever' }],
    ['login', 'USERS_DB_URL', { USERS_DB_URL: 'https://aws.connect.psdb.cloud' }],
    ['mysql-proxy', 'MYSQL_URL', { MYSQL_URL: 'mysql://127.0.0.1:3307/' }],
  ])('%s refuses to start without a valid %s, naming it', async (name, variable, extra) => {
    const child = spawn(process.execPath, [`dist/${name}.js`], { env: { PATH: process.env.PATH!, PORT: '0', DATA_DIR: dataDir, ...extra } });
    let out = '';
    child.stdout!.on('data', (chunk) => (out += chunk));
    expect(await exitCode(child)).toBe(78);
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toMatchObject({ level: 'error', msg: 'invalid configuration', variable });
  });

  describe('on SIGTERM', () => {
    let sink: ReturnType<typeof createServer>;
    let sinkUrl: string;
    beforeAll(async () => {
      sink = createServer((req, res) => req.resume().on('end', () => res.writeHead(202).end()));
      await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
      sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
    });
    afterAll(() => new Promise((resolve) => sink.close(resolve)));

    it('finishes the upload in flight before exiting', async () => {
      const { child, url } = await startBundle('upload', { DATA_DIR: dataDir, K_SINK: sinkUrl });
      const key = await loadSigningKey(undefined, dataDir);
      const { token } = await tokenIssuer(key, audience, 600)({ id: 'u1', email: 'u1@example.com', role: 'user' });
      const video = await readFile(await makeVideo(`${dataDir}/drain.mp4`, { seconds: 1 }));

      const boundary = 'drain-boundary';
      const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="drain.mp4"\r\nContent-Type: video/mp4\r\n\r\n`;
      let push!: (chunk: Uint8Array | null) => void;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          push = (chunk) => (chunk ? controller.enqueue(chunk) : controller.close());
        },
      });
      const response = fetch(`${url}/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
        duplex: 'half',
      } as RequestInit);
      push(Buffer.from(head));
      push(video.subarray(0, 1000));
      await new Promise((resolve) => setTimeout(resolve, 300)); // the request is in the handler
      child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300)); // draining, not yet exited
      expect(child.exitCode).toBeNull();
      push(video.subarray(1000));
      push(Buffer.from(`\r\n--${boundary}--\r\n`));
      push(null);

      const res = await response;
      expect(res.status).toBe(202);
      expect(await exitCode(child)).toBe(0);
    });
  });
});

// What the images run: each bundle alone, in production settings, on the Node major the images are
// built on (knative/Dockerfile), which need not be this machine's. (The embedded SQLite stores are
// for make dev, on this machine's Node; the images carry no native modules.)
describeWithService(
  `Node ${imageNodeMajor}`,
  existsSync(imageNode),
  `function bundles as the images run them, on Node ${imageNodeMajor}`,
  () => {
    it(`uses Node ${imageNodeMajor}, the major knative/Dockerfile builds on`, () => {
      expect(execFileSync(imageNode, ['-p', 'process.versions.node'], { encoding: 'utf8' }).split('.')[0]).toBe(imageNodeMajor);
    });

    /** A folder laid out as the image's /app: the bundle as main.js, no node_modules. */
    const imageOf = async (name: string) => {
      const image = await tempDir('image-');
      await writeFile(join(image, 'package.json'), '{"type":"module"}');
      await copyFile(`dist/${name}.js`, join(image, 'main.js'));
      return image;
    };
    const productionEnv = async (): Promise<Record<string, string>> => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      return {
        PATH: process.env.PATH!, PORT: '0', HOST: '127.0.0.1',
        MEDIA_URL: 'mongodb://127.0.0.1:1/earshot', // connected on first use, not at start
        USERS_DB_URL: 'https://user:password@db.example',
        JWT_PRIVATE_KEY: JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'k1' }),
        JWT_PUBLIC_KEYS: JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] }),
        LINK_SIGNING_KEYS: JSON.stringify({ keys: [generateLinkKey('l1')] }),
        K_SINK: 'http://broker.example/', DOWNLOAD_URL: 'https://download.example', SENDGRID_API_KEY: 'SG.not-a-real-key',
        LOGIN_URL: 'https://login.example', UPLOAD_URL: 'https://upload.example', CORS_ORIGINS: 'https://web.example',
        FFMPEG_PATH: ffmpegPath, MYSQL_URL: 'mysql://127.0.0.1:1/earshot',
      };
    };

    // Left to its make dev default, a store would be SQLite, which the image cannot load, and a
    // key would be generated into DATA_DIR, which a read-only root filesystem cannot keep.
    const readOnly = '/dev/null/earshot-data'; // mkdir fails there as on a read-only root filesystem
    it.each([
      ['login', 'USERS_DB_URL', ''],
      ['upload', 'MEDIA_URL', ''],
      ['convert', 'MEDIA_URL', ''],
      ['notify', 'MEDIA_URL', ''],
      ['download', 'MEDIA_URL', ''],
      ['login', 'JWT_PRIVATE_KEY', readOnly],
      ['upload', 'JWT_PUBLIC_KEYS', readOnly],
      ['download', 'JWT_PUBLIC_KEYS', readOnly],
      ['download', 'LINK_SIGNING_KEYS', readOnly],
      ['notify', 'LINK_SIGNING_KEYS', readOnly],
    ])('%s in its image without %s: one clear log line and exit 78, no stack trace', async (name, variable, dataDir) => {
      const { [variable]: _unset, ...env } = await productionEnv();
      const child = spawn(imageNode, ['main.js'], { cwd: await imageOf(name), env: { ...env, DATA_DIR: dataDir || (await tempDir()) } });
      let [out, err] = ['', ''];
      child.stdout!.on('data', (chunk) => (out += chunk));
      child.stderr!.on('data', (chunk) => (err += chunk));
      // Started instead (it would fail on the first request): the first line says so at once.
      const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve).once('close', () => resolve('')));
      try {
        expect(JSON.parse(first)).toMatchObject({ level: 'error', msg: 'invalid configuration', variable, detail: expect.stringContaining(`set ${variable}`) });
        expect(await exitCode(child)).toBe(78);
        expect(out.trim().split('\n')).toHaveLength(1);
        expect(err).toBe('');
      } finally {
        child.kill('SIGKILL');
      }
    });

    it.each(['convert', 'deadletter', 'download', 'login', 'notify', 'sweeper', 'upload', 'web', 'mysql-proxy'])(
      '%s runs as the image runs it: its bundle alone, no node_modules, production settings',
      async (name) => {
        const image = await imageOf(name);
        const child = spawn(imageNode, ['main.js'], { cwd: image, env: await productionEnv() });
        const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
          createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
          child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
        });
        expect(first).toMatchObject({ msg: 'listening' });
        expect((await fetch(`http://127.0.0.1:${first.port}/healthz`)).status).toBe(200);
        child.kill('SIGTERM');
        expect(await exitCode(child)).toBe(0);
      },
    );
  },
  `a test run with the npm registry reachable (it fetches node-${process.platform}-${process.arch}@${imageNodeMajor})`,
);
