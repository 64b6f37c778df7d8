import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { beforeAll, describe, expect, it } from 'vitest';
import { declareFlacSeconds, makeSilence, makeVideo } from '../../test/media';
import { tempDir } from '../../test/support';
import { probeMedia, readDump } from './probe';

const run = promisify(execFile);

// The npm build (2018) is the fallback everywhere; Debian's 5.1 where installed. Both lay out the dump alike.
const ffmpegs = [ffmpegInstaller.path, ...['/usr/bin/ffmpeg'].filter((path) => existsSync(path))];

describe.each(ffmpegs)('probeMedia with %s', (ffmpegPath) => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });

  it('finds the audio and the declared duration of a video', async () => {
    const video = await makeVideo(join(dir, 'clip.mp4'), { seconds: 3 });
    const probe = await probeMedia(ffmpegPath, video, 30);
    expect(probe.kind).toBe('audio');
    expect(probe.kind === 'audio' && Math.abs(probe.durationSeconds! - 3)).toBeLessThan(0.2);
  });

  it('reads ten hours from the header of a 16 KB FLAC, and what a lying header says', async () => {
    const silence = await makeSilence(join(dir, 'ten-hours.flac'), 36_000);
    expect(await probeMedia(ffmpegPath, silence, 30)).toMatchObject({ kind: 'audio', durationSeconds: 36_000 });
    await declareFlacSeconds(silence, 60);
    expect(await probeMedia(ffmpegPath, silence, 30)).toMatchObject({ kind: 'audio', durationSeconds: 60 });
  });

  it('tells a video without audio', async () => {
    const video = await makeVideo(join(dir, 'mute.mp4'), { seconds: 1, audio: false });
    expect(await probeMedia(ffmpegPath, video, 30)).toEqual({ kind: 'no-audio' });
  });

  it('calls a file that is not media, or a playlist to other files, unreadable', async () => {
    const text = join(dir, 'notes.txt');
    await writeFile(text, 'not a video\n'.repeat(100));
    expect(await probeMedia(ffmpegPath, text, 30)).toMatchObject({ kind: 'unreadable' });
    const playlist = join(dir, 'list.m3u8');
    await writeFile(playlist, `#EXTM3U\n#EXTINF:3,\nfile:${join(dir, 'clip.mp4')}\n#EXT-X-ENDLIST\n`);
    expect(await probeMedia(ffmpegPath, playlist, 30)).toMatchObject({ kind: 'unreadable' });
  });

  it('is not fooled by tags dressed as ffmpeg lines', async () => {
    // Matroska keeps any tag name; ffmpeg prints names and values as they are.
    const forged = join(dir, 'forged.mka');
    const fake = '\n  Duration: 00:00:01.00, start: 0.000000, bitrate: 1 kb/s\n';
    await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'sine=duration=5', '-c:a', 'flac',
      '-metadata', `x${fake}=v`, '-metadata', `Duration: 00:00:02.00, start: 0=v${fake}`, '-f', 'matroska', forged]);
    expect(await probeMedia(ffmpegPath, forged, 30)).toMatchObject({ kind: 'audio', durationSeconds: 5 });
  });
});

describe('readDump: the declared duration', () => {
  it('reads input #0 only, and none when it declares none', () => {
    const dump = (duration: string) =>
      ["[info] Input #0, mpegts, from 'file:x':", `[info]   Duration: ${duration}, start: 1.4, bitrate: 95 kb/s`, "[info] Output #0, null, to 'pipe:':", '[info]   Duration: 01:00:00.00'].join('\n');
    expect(readDump(dump('100:00:01.50')).durationSeconds).toBe(360_001.5);
    expect(readDump(dump('N/A')).durationSeconds).toBeUndefined();
    expect(readDump('[error] file:x: Invalid data found when processing input').durationSeconds).toBeUndefined();
  });

  it('skips the entries of Metadata blocks and lines ffmpeg did not start', () => {
    const stderr = [
      "[info] Input #0, matroska,webm, from 'file:x':",
      '[info]   Metadata:',
      '[info]     Duration: 00:00:01.00, start: 0 : v', // a tag named like the line
      '  Duration: 00:00:02.00, start: 0.000000', // the rest of a tag with a newline in it
      '[info]   Duration: 00:00:05.00, start: 0.000000, bitrate: 1 kb/s',
    ].join('\n');
    expect(readDump(stderr).durationSeconds).toBe(5);
  });
});
