import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EventTypes } from '../../shared/events';
import { openStores } from '../../shared/stores';
import { delivery, uploadedEvent } from '../../test/events';
import { ffmpegPath, makeVideo } from '../../test/media';
import { startBundle } from '../../test/processes';
import { alice, tempDir } from '../../test/support';

describe('convert at start', () => {
  it('removes the temp folders a killed convert left, keeps live ones, and says so once serving', async () => {
    const dir = await tempDir();
    const tmp = join(dir, 'tmp');
    const hourAgo = new Date(Date.now() - 3600_000);
    for (const name of ['earshot-convert-killed', 'earshot-convert-live']) {
      await mkdir(join(tmp, name), { recursive: true });
      await writeFile(join(tmp, name, 'input'), 'video');
    }
    for (const path of [join(tmp, 'earshot-convert-killed', 'input'), join(tmp, 'earshot-convert-killed')]) await utimes(path, hourAgo, hourAgo);

    // Idle threshold: FFMPEG_TIMEOUT_SECONDS + 10 minutes = 11 minutes.
    const convert = await startBundle('convert', {
      MEDIA_URL: pathToFileURL(join(dir, 'store')).href,
      FFMPEG_PATH: ffmpegPath,
      FFMPEG_TIMEOUT_SECONDS: '60',
      TMPDIR: tmp,
      LOG_LEVEL: 'info',
    });
    try {
      expect(convert.lines[0]).toMatchObject({ msg: 'listening' });
      expect((await fetch(`${convert.url}/healthz`)).status).toBe(200);
      await until(() => convert.lines.some((l) => l.msg === 'removed temp folders of an earlier convert'));
      expect(convert.lines.find((l) => l.level === 'warn')).toMatchObject({ folders: [join(tmp, 'earshot-convert-killed')] });
      expect(await readdir(tmp)).toEqual(['earshot-convert-live']);
    } finally {
      await convert.stop();
    }
  });
});

async function until(check: () => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('convert, configured from its environment', () => {
  it('encodes long audio in CONVERT_WORKERS stretches at once, and says so', async () => {
    const dir = await tempDir();
    const store = pathToFileURL(join(dir, 'store')).href;
    const video = await makeVideo(join(dir, 'long.mp4'), { seconds: 25, fps: 1 });
    const stores = await openStores(new URL(store));
    const videoId = randomUUID();
    await stores.media.put('videos', videoId, { owner: alice.id, filename: 'long.mp4', contentType: 'video/mp4' }, createReadStream(video));
    await stores.jobs.create({ id: videoId, owner: alice.id, filename: 'long.mp4' });
    await stores.close();
    const convert = await startBundle('convert', { MEDIA_URL: store, FFMPEG_PATH: ffmpegPath, CONVERT_WORKERS: '2', CONVERT_SEGMENT_SECONDS: '10', LOG_LEVEL: 'info' });
    try {
      expect(convert.lines[0]).toMatchObject({ msg: 'listening', workers: 2 });
      const event = uploadedEvent({ videoId, owner: { id: alice.id, email: alice.email }, filename: 'long.mp4', contentType: 'video/mp4', sizeBytes: 1 });
      const res = await fetch(convert.url, delivery(event));
      expect(res.headers.get('ce-type')).toBe(EventTypes.audioConverted);
      expect(convert.lines.find((l) => l.msg === 'converted')).toMatchObject({ videoId, segments: 2 });
    } finally {
      await convert.stop();
    }
  });
});
