/**
 * No head-of-line blocking in `make dev`: a short clip uploaded while a long conversion runs is
 * converted at once by a second convert instance (containerConcurrency 1, max-scale 10), as
 * Knative would scale out. Deterministic, not timed: convert's ffmpeg is a wrapper that holds the
 * first MP3 encode until the test releases it, so the long conversion runs exactly as long as the
 * test wants; everything else (the start-up check, probes, other encodes) runs at once.
 */
import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { bundles, startRuntime, stopRuntimes, until, upload, waitForJob } from './e2e';
import { ffmpegPath, makeVideo } from './media';
import { tempDir } from './support';

afterEach(stopRuntimes);

/** An ffmpeg whose first MP3 encode waits for `release`; it creates `holding` when it starts waiting. */
async function gatedFfmpeg(dir: string) {
  const [path, claim, holding, release] = ['ffmpeg-gated', 'claimed', 'holding', 'release'].map((f) => join(dir, f)) as [string, string, string, string];
  await writeFile(
    path,
    [
      '#!/bin/sh',
      // mkdir is atomic: exactly one encode claims the gate.
      `case " $* " in *" libmp3lame "*) if mkdir '${claim}' 2>/dev/null; then`,
      `  : > '${holding}'`,
      `  while [ ! -e '${release}' ]; do sleep 0.1; done`,
      'fi;; esac',
      `exec '${ffmpegPath}' "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  return { path, holding: () => existsSync(holding), release: () => writeFile(release, '') };
}

it('converts a short clip uploaded after a long one while the long one is still converting, on a second convert instance', async () => {
  const dir = await tempDir();
  const ffmpeg = await gatedFfmpeg(dir);
  // Two instances whatever this machine's core count; the cap by cores is the default.
  const rt = await startRuntime(bundles, join(dir, 'data'), { FFMPEG_PATH: ffmpeg.path, EARSHOT_MAX_INSTANCES: '2' });
  const convertStarts = () => rt.lines.filter((l) => l.msg === 'cold start' && l.function === 'convert').length;

  const longId = await upload(rt, await makeVideo(join(dir, 'long.mp4'), { seconds: 60 }), 'long.mp4');
  await until(ffmpeg.holding);
  expect((await waitForJob(rt, longId, 'converting', 0)).status).toBe('converting');

  const shortId = await upload(rt, await makeVideo(join(dir, 'short.mp4'), { seconds: 3 }), 'short.mp4');
  await waitForJob(rt, shortId, 'converted');
  expect((await waitForJob(rt, longId, 'converting', 0)).status).toBe('converting');
  expect(convertStarts()).toBe(2);

  await ffmpeg.release();
  await waitForJob(rt, longId, 'converted');
  expect(convertStarts()).toBe(2);
});
