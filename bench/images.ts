/**
 * B8: the images `make images` built. Each one's compressed size (its layers gzipped, as a
 * registry stores them), and its cold start: podman run until the first 200 on /healthz, against
 * the same bundle started bare (`node dist/<fn>.js`) with the same env, interleaved.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { mp3Command } from '../functions/convert/transcode';
import { contained, existingImages, imageName, podman } from '../local/podman';
import { openStores } from '../shared/stores';
import { envArgs, functionSpec, mainProcess, serviceEnv } from '../test/podman';
import { freePort } from '../test/support';
import { converted, storedUpload } from './convert';
import { benchVideo } from './inputs';
import { interleaved, time, type Row } from './measure';

const run = promisify(execFile);

const MB = 1e6;

async function compressedSize(image: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-oci-'));
  try {
    await run('buildah', ['--storage-driver', 'vfs', 'push', '--quiet', image, `oci:${dir}:latest`]);
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
    await healthy(port, 5);
    return performance.now() - started;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** Polls /healthz every `everyMs` until a 200, for at most 120 s. */
async function healthy(port: number, everyMs: number): Promise<void> {
  for (const end = Date.now() + 120_000; !(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false)); await new Promise((r) => setTimeout(r, everyMs))) {
    if (Date.now() > end) throw new Error(`no 200 on /healthz (port ${port}) within 120 s`);
  }
}

/** Whether make images has built every one of them. */
export async function imagesBuilt(names: string[], tag = 'latest'): Promise<boolean> {
  const wanted = names.map((name) => imageName(name, tag));
  return (await existingImages(wanted)).size === wanted.length;
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
    const container = () => untilHealthy((port) => podman(['run', ...contained(functionSpec(name)), ...envArgs(env(port)), image]));
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

/**
 * B1 in the image: the convert container, with its own FFmpeg, handling `video.uploaded` for a
 * stored video until its reply (the video read from GridFS into its /tmp, the MP3 written back),
 * against the same ffmpeg command run on the same file in that container's root; and that
 * command against the npm ffmpeg `make dev` uses, on this machine.
 */
export async function benchConvertInImage({ seconds, runs, mediaUrl, tag = 'latest' }: { seconds: number; runs: number; mediaUrl: string; tag?: string }): Promise<Row[]> {
  const video = await benchVideo(seconds);
  const options = { ffmpegPath: '/usr/bin/ffmpeg', quality: 2, timeoutSeconds: 3600 };
  const args = (input: string, output: string) => (mp3Command(input, output, options) as unknown as { _getArguments(): string[] })._getArguments().map(String);
  const stores = await openStores(new URL(mediaUrl));
  const port = await freePort();
  const env = { ...(await serviceEnv())('convert'), MEDIA_URL: mediaUrl, PORT: String(port), HOST: '127.0.0.1' };
  const child = podman(['run', ...contained(functionSpec('convert')), ...envArgs(env), imageName('convert', tag)]);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdout!.resume();
  child.stderr!.resume();
  try {
    await healthy(port, 50);
    // The container's root as its processes see it: its ffmpeg, its libraries, its /tmp.
    const root = `/proc/${await mainProcess(port)}/root`;
    const { stdout } = await run('chroot', [root, options.ffmpegPath, '-version']);
    const version = /^ffmpeg version (\S+)/.exec(stdout)?.[1] ?? 'unknown';
    await copyFile(video, join(root, 'tmp', 'bench-input.mp4'));
    // The ffmpeg command, timed, its output removed after. `where`: the output as this side sees it.
    const command = (file: string, prefix: string[], input: string, output: string, where = output) =>
      time(() => run(file, [...prefix, ...args(input, output)], { maxBuffer: 64 * 1024 * 1024 })).finally(() => rm(where, { force: true }));
    const inImage = () => command('chroot', [root, options.ffmpegPath], '/tmp/bench-input.mp4', '/tmp/bench-output.mp3', join(root, 'tmp', 'bench-output.mp3'));
    const npm = () => command(ffmpegInstaller.path, [], video, join(tmpdir(), `earshot-bench-${randomUUID()}.mp3`));
    const subject = async () => {
      const event = await storedUpload(stores, video);
      return time(async () => converted(await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', ...event })));
    };
    const m = await interleaved(runs, inImage, subject);
    const versus = await interleaved(runs, npm, inImage);
    const length = seconds / 60 >= 1 ? `${seconds / 60}-min` : `${seconds}-s`;
    return [
      {
        id: 'B1',
        measure: `convert ${length} MP4 in its image as it runs by default (stretches on every CPU), FFmpeg ${version}; video and MP3 in GridFS (FerretDB)`,
        value: m.subject / 1000,
        unit: 's',
        baseline: { name: 'ffmpeg command in the image', value: m.baseline / 1000 },
        ratio: m.subject / m.baseline,
        // Not B1's ≤ 1.05×: that is earshot's own cost, measured on a file store (the image has no
        // SQLite for one); this is what a conversion costs in the image with its real store.
        target: '—',
        met: null,
        note: 'the baseline is one ffmpeg pass; convert also reads the video from GridFS and writes the MP3 back (FerretDB: see B3)',
      },
      {
        id: 'B1',
        measure: `ffmpeg command, ${length} MP4: the image's FFmpeg ${version} against the npm ffmpeg (make dev's fallback)`,
        value: versus.subject / 1000,
        unit: 's',
        baseline: { name: 'npm static ffmpeg 2018', value: versus.baseline / 1000 },
        ratio: versus.subject / versus.baseline,
        target: '< 1×',
        met: versus.subject < versus.baseline,
      },
    ];
  } finally {
    child.kill('SIGTERM');
    await exited;
    await stores.close();
  }
}
