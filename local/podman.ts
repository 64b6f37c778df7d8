/**
 * Running `make images`' images on this machine: podman as it allows it. For `EARSHOT_IMAGES=… make
 * dev` (local/runtime.ts), the images lane (test/images.test.ts) and B8 (bench/images.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { FunctionSpec } from './topology';

const tools = ['/usr/bin/buildah', '/usr/bin/podman', '/usr/sbin/debootstrap', '/usr/bin/unshare'];
/** make images (buildah on a debootstrap base) and podman, as root. */
export const podmanAvailable = tools.every((t) => existsSync(t)) && process.getuid?.() === 0;

/**
 * podman in a mount namespace of its own without the unified cgroup hierarchy (crun refuses this
 * machine's hybrid cgroups), cgroupfs, and vfs storage (buildah's). The chain execs down to podman
 * itself, so a signal to the process is podman's to proxy to the container.
 */
export const podmanCommand = (args: string[]): string[] => [
  'unshare', '-m', '--propagation', 'private', 'sh', '-c',
  'umount /sys/fs/cgroup/unified 2>/dev/null; exec podman --cgroup-manager cgroupfs --storage-driver vfs "$@"', 'podman', ...args,
];

export const podman = (args: string[]): ChildProcess => {
  const [file, ...rest] = podmanCommand(args);
  return spawn(file!, rest);
};

/**
 * As its Service's pod runs it: the root filesystem read-only if the manifest says so (and no
 * writable /tmp, /run, /var/tmp but its emptyDir volumes); and the limits crun cannot raise here.
 */
export const contained = (fn: Pick<FunctionSpec, 'readOnlyRootFilesystem' | 'emptyDirs'>): string[] => [
  '--rm', '--network', 'host',
  ...(fn.readOnlyRootFilesystem ? ['--read-only', '--read-only-tmpfs=false'] : []),
  ...fn.emptyDirs.flatMap((path) => ['--tmpfs', path]),
  '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
];

/** make images' name for a function's image: `localhost/earshot/<fn>:<tag>` unless REGISTRY was given. */
export const imageName = (fn: string, tag: string) => `localhost/earshot/${fn}:${tag}`;

/** The images of these names that exist here. */
export async function existingImages(names: string[]): Promise<Set<string>> {
  const child = podman(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  await new Promise((resolve) => child.once('close', resolve));
  const listed = new Set(out.split('\n'));
  return new Set(names.filter((n) => listed.has(n)));
}

/**
 * `image` run as its Knative Service runs it, labelled, given the env keys named (their values
 * come from podman's own env, so none is on a command line) and the activator's PORT and HOST.
 * podman is told SIGTERM when the process that started it dies, even by SIGKILL: it passes the
 * signal on, and the container drains and goes (without, it would outlive make dev).
 */
export const containerCommand = (fn: FunctionSpec, image: string, envKeys: string[], label: string): string[] => [
  'setpriv', '--pdeathsig', 'SIGTERM', '--',
  ...podmanCommand(['run', ...contained(fn), '--label', label, ...['PORT', 'HOST', ...envKeys].flatMap((k) => ['-e', k]), image]),
];
