/**
 * The images as Knative runs them: built by `make images` (buildah here), run by podman with only
 * the env each Service gives (its ConfigMap, its Secret keys, K_SINK where a SinkBinding binds it,
 * PORT), on a read-only root filesystem with a writable /tmp, as the image's user. Each answers
 * /healthz on $PORT and exits 0 on SIGTERM; a missing setting is one log line and exit 78; convert
 * carries its image's ffmpeg.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { exportJWK, generateKeyPair } from 'jose';
import { beforeAll, expect, it } from 'vitest';
import { readTopology } from '../local/topology';
import { describeWithService } from './services';

const tag = 'test';
const image = (fn: string) => `localhost/earshot/${fn}:${tag}`;
const tools = ['/usr/bin/buildah', '/usr/bin/podman', '/usr/sbin/debootstrap', '/usr/bin/unshare'];
const available = tools.every((t) => existsSync(t)) && process.getuid?.() === 0;

/**
 * podman here: in a mount namespace of its own without the unified cgroup hierarchy (crun refuses
 * this machine's hybrid cgroups), cgroupfs, vfs storage (buildah's), and the limits crun cannot raise.
 * The chain execs down to podman itself, so a signal to the child is podman's to proxy.
 */
const podman = (args: string[]): ChildProcess =>
  spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
    'umount /sys/fs/cgroup/unified 2>/dev/null; exec podman --cgroup-manager cgroupfs --storage-driver vfs "$@"', 'podman', ...args]);
const contained = ['--rm', '--network', 'host', '--read-only', '--tmpfs', '/tmp', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

const output = (child: ChildProcess) => {
  let [out, err] = ['', ''];
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { exited, out: () => out, err: () => err };
};

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** What each Service's env holds once a deployer has filled in the ConfigMap and the Secret. */
async function serviceEnv(): Promise<(name: string) => Record<string, string>> {
  const { functions, config } = readTopology();
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const configMap = {
    ...config,
    JWT_PUBLIC_KEYS: JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] }),
    DOWNLOAD_URL: 'https://download.earshot.example',
  };
  // Stores connect on first use: addresses no request here reaches.
  const secret: Record<string, string> = {
    MEDIA_URL: 'mongodb://127.0.0.1:1/earshot',
    USERS_DB_URL: 'https://earshot:not-a-password@db.example',
    JWT_PRIVATE_KEY: JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'k1' }),
    SENDGRID_API_KEY: 'SG.local-test-only',
  };
  return (name) => {
    const fn = functions.find((f) => f.name === name)!;
    return {
      ...configMap,
      ...Object.fromEntries(fn.secretEnv.map((key) => [key, secret[key]!])),
      ...(fn.sendsEvents && { K_SINK: 'http://127.0.0.1:1/' }),
    };
  };
}

const envArgs = (env: Record<string, string>) => Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);

describeWithService('buildah, podman and debootstrap as root (apt-get install buildah podman debootstrap)', available, 'the images under the Knative runtime contract', () => {
  let envOf: (name: string) => Record<string, string>;

  beforeAll(async () => {
    // dist/ is the test run's own build (global setup); make images would rebuild it under other suites.
    await promisify(execFile)('bash', ['tools/images.sh'], { env: { ...process.env, TAG: tag, FUNCTIONS: 'convert deadletter download login notify upload' } });
    envOf = await serviceEnv();
  }, 1_200_000);

  it.each(['convert', 'deadletter', 'download', 'login', 'notify', 'upload'])(
    '%s: with only its Service\'s env, read-only root, writable /tmp: answers /healthz on $PORT, runs as uid 1000, exits 0 on SIGTERM',
    async (fn) => {
      const port = await freePort();
      const child = podman(['run', ...contained, ...envArgs({ ...envOf(fn), PORT: String(port) }), image(fn)]);
      const { exited, out, err } = output(child);
      try {
        const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve).once('close', () => resolve('')));
        expect(JSON.parse(first || '{}'), err()).toMatchObject({ msg: 'listening', port });
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
        const uid = await new Promise<string>((resolve) => {
          const id = podman(['run', ...contained, '--entrypoint', 'id', image(fn), '-u']);
          const o = output(id);
          void o.exited.then(() => resolve(o.out().trim()));
        });
        expect(uid).toBe('1000');
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
        expect(out()).not.toMatch(/"level":"error"/);
      } finally {
        child.kill('SIGKILL');
      }
    },
  );

  it('login without USERS_DB_URL: one invalid-configuration line naming it, exit 78', async () => {
    const { USERS_DB_URL: _unset, ...env } = envOf('login');
    const child = podman(['run', ...contained, ...envArgs({ ...env, PORT: String(await freePort()) }), image('login')]);
    const { exited, out } = output(child);
    expect(await exited).toBe(78);
    const lines = out().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', msg: 'invalid configuration', variable: 'USERS_DB_URL' });
  });

  it('convert carries its image\'s ffmpeg, Debian 13\'s FFmpeg 7, at FFMPEG_PATH', async () => {
    const child = podman(['run', ...contained, '--entrypoint', 'sh', image('convert'), '-c', '"$FFMPEG_PATH" -version']);
    const { exited, out } = output(child);
    expect(await exited).toBe(0);
    expect(out().split('\n')[0]).toMatch(/^ffmpeg version 7\./);
  });
});
