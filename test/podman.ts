/**
 * Running the images here, for test/images.test.ts and bench/images.ts: podman as this machine
 * allows it, and the env each Knative Service gives its container.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { readTopology } from '../local/topology';

const tools = ['/usr/bin/buildah', '/usr/bin/podman', '/usr/sbin/debootstrap', '/usr/bin/unshare'];
/** make images (buildah on a debootstrap base) and podman, as root. */
export const podmanAvailable = tools.every((t) => existsSync(t)) && process.getuid?.() === 0;

/**
 * podman in a mount namespace of its own without the unified cgroup hierarchy (crun refuses this
 * machine's hybrid cgroups), cgroupfs, and vfs storage (buildah's). The chain execs down to podman
 * itself, so a signal to the child is podman's to proxy to the container.
 */
export const podman = (args: string[]): ChildProcess =>
  spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
    'umount /sys/fs/cgroup/unified 2>/dev/null; exec podman --cgroup-manager cgroupfs --storage-driver vfs "$@"', 'podman', ...args]);

/** As a Knative pod runs it: read-only root, writable /tmp; and the limits crun cannot raise here. */
export const contained = ['--rm', '--network', 'host', '--read-only', '--tmpfs', '/tmp', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export const envArgs = (env: Record<string, string>) => Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);

export function output(child: ChildProcess) {
  let [out, err] = ['', ''];
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { exited, out: () => out, err: () => err };
}

export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** Each Service's env once a deployer has filled in the ConfigMap and the Secret (PORT aside). */
export async function serviceEnv(): Promise<(name: string) => Record<string, string>> {
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
