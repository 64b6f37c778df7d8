import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { audioCodec, decodedSeconds, ffmpegPath, makeVideo } from '../../test/media';
import { tempDir } from '../../test/support';
import { Unconvertible, mp3Transcoder } from './transcode';

describe('mp3Transcoder', () => {
  let dir: string;
  let video: string;
  beforeAll(async () => {
    dir = await tempDir();
    video = await makeVideo(join(dir, 'in.mp4'), { seconds: 4 });
  });

  it('writes a VBR MP3 with a Xing header and reports its duration', async () => {
    const out = join(dir, 'out.mp3');
    const { durationSeconds } = await mp3Transcoder({ ffmpegPath, quality: 2, timeoutSeconds: 60 })(video, out);
    expect(await audioCodec(out)).toBe('mp3');
    expect(Math.abs(durationSeconds - 4)).toBeLessThan(0.2);
    expect(Math.abs((await decodedSeconds(out)) - durationSeconds)).toBeLessThan(0.1);
    // LAME writes "Xing" for VBR ("Info" for CBR) in the first frame; players read duration from it.
    expect((await readFile(out)).subarray(0, 4096).includes('Xing')).toBe(true);
  });

  it('gives up at the wall-clock limit with a reason fit for the user', async () => {
    const transcode = mp3Transcoder({ ffmpegPath, quality: 2, timeoutSeconds: 0.001 });
    await expect(transcode(video, join(dir, 'slow.mp3'))).rejects.toThrow(new Unconvertible('The video took longer than 0.001 seconds to convert.'));
  });

  it('treats a missing ffmpeg as our failure (retried), not the file\'s', async () => {
    const transcode = mp3Transcoder({ ffmpegPath: join(dir, 'no-ffmpeg'), quality: 2, timeoutSeconds: 60 });
    const error = await transcode(video, join(dir, 'x.mp3')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(Unconvertible);
  });

  it('refuses to follow a playlist to other files', async () => {
    const playlist = join(dir, 'list.m3u8');
    await import('node:fs/promises').then((fs) => fs.writeFile(playlist, `#EXTM3U\n#EXTINF:4,\nfile:${video}\n#EXT-X-ENDLIST\n`));
    await expect(mp3Transcoder({ ffmpegPath, quality: 2, timeoutSeconds: 60 })(playlist, join(dir, 'p.mp3'))).rejects.toBeInstanceOf(Unconvertible);
  });
});
