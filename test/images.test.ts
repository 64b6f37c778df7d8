/**
 * The images as Knative runs them: built by `make images` (buildah here), run by podman with only
 * the env each Service gives (its ConfigMap, its Secret keys, K_SINK where a SinkBinding binds it,
 * PORT), on a read-only root filesystem with a writable /tmp, as the image's user. Each answers
 * /healthz on $PORT and exits 0 on SIGTERM; a missing setting is one log line and exit 78; convert
 * carries its image's ffmpeg.
 */
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { benchImages } from '../bench/images';
import { contained, imageName, podman, podmanAvailable } from '../local/podman';
import { envArgs, freePort, output, serviceEnv } from './podman';
import { describeWithService } from './services';

const tag = 'test';
const image = (fn: string) => imageName(fn, tag);

/** The process in a container that serves `port`: node main.js with PORT in its environment. */
async function mainProcess(port: number): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const [cmdline, environ] = await Promise.all([`/proc/${entry}/cmdline`, `/proc/${entry}/environ`].map((p) => readFile(p, 'utf8').catch(() => '')));
    if (cmdline === 'node\0main.js\0' && environ!.split('\0').includes(`PORT=${port}`)) return Number(entry);
  }
  throw new Error(`no container process serves port ${port}`);
}

describeWithService('buildah, podman and debootstrap as root (apt-get install buildah podman debootstrap)', podmanAvailable, 'the images under the Knative runtime contract', () => {
  let envOf: (name: string) => Record<string, string>;

  beforeAll(async () => {
    // dist/ is the test run's own build (global setup); make images would rebuild it under other suites.
    await promisify(execFile)('bash', ['tools/images.sh'], { env: { ...process.env, TAG: tag, FUNCTIONS: 'convert deadletter download login notify upload' } });
    envOf = await serviceEnv();
  }, 1_200_000);

  it.each(['convert', 'deadletter', 'download', 'login', 'notify', 'upload'])(
    '%s: with only its Service\'s env, read-only root, writable /tmp: answers /healthz on $PORT, runs as uid 1000 (convert: with FFmpeg 7 at FFMPEG_PATH), exits 0 on SIGTERM',
    async (fn) => {
      const port = await freePort();
      const child = podman(['run', ...contained, ...envArgs({ ...envOf(fn), PORT: String(port) }), image(fn)]);
      const { exited, out, err } = output(child);
      try {
        const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve).once('close', () => resolve('')));
        expect(JSON.parse(first || '{}'), err()).toMatchObject({ msg: 'listening', port });
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
        // Seen from this side: the container's main process (the one given this PORT), its user.
        const pid = await mainProcess(port);
        expect(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]).toBe('1000');
        if (fn === 'convert') {
          // Its image's ffmpeg, run in the container's own root: Debian 13's FFmpeg 7.
          const ffmpeg = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').find((v) => v.startsWith('FFMPEG_PATH='))?.slice('FFMPEG_PATH='.length);
          expect(ffmpeg).toBe('/usr/bin/ffmpeg');
          const { stdout } = await promisify(execFile)('chroot', [`/proc/${pid}/root`, ffmpeg!, '-version']);
          expect(stdout.split('\n')[0]).toMatch(/^ffmpeg version 7\./);
        }
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

  it('B8 measures each image: compressed size, and container start to the first 200 against the bare bundle', async () => {
    const rows = await benchImages({ names: ['login'], runs: 1, tag });
    expect(rows.map((r) => r.measure)).toEqual(['image size, compressed: login', 'cold start in its container: login']);
    for (const row of rows) expect(row.value).toBeGreaterThan(0);
    expect(rows[1]!.baseline!.value).toBeGreaterThan(0);
  });
});
