import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ffmpegPath } from '../../test/media';
import { startBundle } from '../../test/processes';
import { tempDir } from '../../test/support';

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
