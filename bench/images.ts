/**
 * B8: the images `make images` built. Each one's compressed size (its layers gzipped, as a
 * registry stores them), and its cold start: podman run until the first 200 on /healthz, against
 * the same bundle started bare (`node dist/<fn>.js`) with the same env, interleaved.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { contained, imageName, podman } from '../local/podman';
import { envArgs, freePort, serviceEnv } from '../test/podman';
import { interleaved, type Row } from './measure';

const MB = 1e6;

async function compressedSize(image: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-oci-'));
  try {
    await promisify(execFile)('buildah', ['--storage-driver', 'vfs', 'push', '--quiet', image, `oci:${dir}:latest`]);
    const blobs = join(dir, 'blobs', 'sha256');
    const sizes = await Promise.all((await readdir(blobs)).map(async (b) => (await stat(join(blobs, b))).size));
    return sizes.reduce((a, b) => a + b, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Spawn until the first 200 on /healthz, polled; then SIGTERM and wait for the exit. */
async function untilHealthy(start: (port: number) => ChildProcess): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = start(port);
  child.stdout?.resume();
  child.stderr?.resume();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    for (const end = started + 120_000; performance.now() < end; await new Promise((r) => setTimeout(r, 5))) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false);
      if (ok) return performance.now() - started;
    }
    throw new Error('no 200 on /healthz within 120 s');
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** Whether make images has built them (buildah's store, as tools/images.sh fills it). */
export async function imagesBuilt(tag = 'latest'): Promise<boolean> {
  return promisify(execFile)('buildah', ['--storage-driver', 'vfs', 'inspect', '--type', 'image', imageName('login', tag)]).then(() => true, () => false);
}

export async function benchImages({ names, runs, tag = 'latest' }: { names: string[]; runs: number; tag?: string }): Promise<Row[]> {
  const envOf = await serviceEnv();
  const rows: Row[] = [];
  for (const name of names) {
    const image = imageName(name, tag);
    const bytes = await compressedSize(image);
    rows.push({
      id: 'B8',
      measure: `image size, compressed: ${name}`,
      value: bytes / MB,
      unit: 'MB',
      target: name === 'convert' ? '—' : '< 100 MB',
      met: name === 'convert' ? null : bytes < 100 * MB,
      note: name === 'convert' ? "Debian 13's FFmpeg 7.1 and its libraries" : undefined,
    });
    const env = (port: number) => ({ ...envOf(name), PORT: String(port), HOST: '127.0.0.1' });
    const bare = () => untilHealthy((port) => spawn(process.execPath, [`dist/${name}.js`], { env: { PATH: process.env.PATH!, ...env(port) }, stdio: 'ignore' }));
    const container = () => untilHealthy((port) => podman(['run', ...contained, ...envArgs(env(port)), image]));
    const m = await interleaved(runs, bare, container);
    rows.push({
      id: 'B8',
      measure: `cold start in its container: ${name}`,
      value: m.subject,
      unit: 'ms',
      baseline: { name: 'bare bundle', value: m.baseline },
      ratio: m.subject / m.baseline,
      target: '—',
      met: null,
      note: 'podman run → first 200 on /healthz; Knative adds scheduling and image pull',
    });
  }
  return rows;
}
