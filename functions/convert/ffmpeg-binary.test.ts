import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support';
import { checkFfmpeg, chooseFfmpeg } from './ffmpeg-binary';

const npm = async () => ffmpegInstaller.path;

/** A folder holding an `ffmpeg` that is the given script. */
async function fakeFolder(script: string): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, 'ffmpeg'), `#!/bin/sh\n${script}\n`);
  await chmod(join(dir, 'ffmpeg'), 0o755);
  return dir;
}

describe('choosing the ffmpeg', () => {
  it('takes FFMPEG_PATH first, with its version line', async () => {
    const chosen = await chooseFfmpeg({ FFMPEG_PATH: ffmpegInstaller.path, PATH: '/usr/bin' }, npm);
    expect(chosen).toMatchObject({ path: ffmpegInstaller.path, source: 'FFMPEG_PATH' });
    expect(chosen.version).toMatch(/^ffmpeg version \S+/);
  });

  it('refuses an FFMPEG_PATH that does not work, naming it, rather than fall back', async () => {
    const dir = await fakeFolder('exit 1');
    await expect(chooseFfmpeg({ FFMPEG_PATH: join(dir, 'ffmpeg') }, npm)).rejects.toThrow(`FFMPEG_PATH=${join(dir, 'ffmpeg')} cannot be used`);
  });

  it('takes the first ffmpeg on PATH that can encode MP3, passing over one that cannot', async () => {
    // An ffmpeg built without LAME: it runs, and lists other encoders only.
    const lame = await fakeFolder(`case "$*" in *-encoders*) echo ' A..... aac  AAC';; *) echo 'ffmpeg version fake';; esac`);
    const chosen = await chooseFfmpeg({ PATH: [lame, join(ffmpegInstaller.path, '..')].join(':') }, async () => '/nonexistent');
    expect(chosen).toMatchObject({ path: ffmpegInstaller.path, source: 'system' });
    expect(await checkFfmpeg(join(lame, 'ffmpeg'))).toEqual({ unusable: 'it has no libmp3lame encoder' });
  });

  it('falls back to the npm build when PATH has none', async () => {
    expect(await chooseFfmpeg({ PATH: await tempDir() }, npm)).toMatchObject({ path: ffmpegInstaller.path, source: 'npm' });
  });
});
