import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  audioCodec,
  declareFlacSeconds,
  decodedSeconds,
  ffmpegPath,
  ffprobe,
  ffprobePath,
  loudness,
  makeLoudSurround,
  makeSilence,
  makeTwoTracks,
  makeVideo,
  readTags,
  streams,
  toneHz,
} from '../../test/media';
import { describeWithService } from '../../test/services';
import { tempDir } from '../../test/support';
import { Unconvertible, clock, mp3Transcoder, outputBound, progressSeconds } from './transcode';

describe('mp3Transcoder', () => {
  let dir: string;
  let video: string;
  const transcoder = (options: Partial<Parameters<typeof mp3Transcoder>[0]> = {}) => mp3Transcoder({ ffmpegPath, quality: 2, timeoutSeconds: 60, ...options });
  beforeAll(async () => {
    dir = await tempDir();
    video = await makeVideo(join(dir, 'in.mp4'), { seconds: 4 });
  });

  it('writes a VBR MP3 with a Xing header and reports its duration', async () => {
    const out = join(dir, 'out.mp3');
    const { durationSeconds } = await transcoder()(video, out);
    expect(await audioCodec(out)).toBe('mp3');
    expect(Math.abs(durationSeconds - 4)).toBeLessThan(0.2);
    expect(Math.abs((await decodedSeconds(out)) - durationSeconds)).toBeLessThan(0.1);
    // LAME writes "Xing" for VBR ("Info" for CBR) in the first frame; players read duration from it.
    expect(firstFrame(await readFile(out)).includes('Xing')).toBe(true);
  });

  it('reports how far it has got in percent of the declared duration, rising, up to the whole', async () => {
    const percents: number[] = [];
    await transcoder()(video, join(dir, 'progress.mp3'), {}, (percent) => percents.push(percent));
    expect(percents.length).toBeGreaterThan(0); // ffmpeg's last line at least, however fast it went
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBeGreaterThan(90);
    expect(Math.max(...percents)).toBeLessThanOrEqual(100);
  });

  it('reads progress from ffmpeg\'s own lines only', () => {
    expect(progressSeconds('[info] size=     139kB time=00:00:30.01 bitrate=  38.0kbits/s speed= 115x    ')).toBe(30.01);
    expect(progressSeconds('[info] size=     256KiB time=01:02:03.50 bitrate= 128.5kbits/s speed=32.6x elapsed=0:00:00.50')).toBe(3723.5);
    expect(progressSeconds('[info] frame=  120 fps=0.0 q=-0.0 size=  139kB time=00:00:04.00 bitrate=N/A')).toBe(4);
    expect(progressSeconds('[info] size=N/A time=N/A bitrate=N/A speed=N/A')).toBeUndefined();
    // A tag's text as ffmpeg dumps it (indented, after the key), or without the level prefix.
    expect(progressSeconds('[info]     comment         : size=1kB time=09:00:00.00 x')).toBeUndefined();
    expect(progressSeconds('                      : [info] size=1kB time=09:00:00.00 x')).toBeUndefined();
    expect(progressSeconds('size=1kB time=09:00:00.00 x')).toBeUndefined();
  });

  it('tags the MP3 with the source\'s title, artist and comment, cleaned, and the encoder; no container leftovers or chapters', async () => {
    const tagged = await makeVideo(join(dir, 'tagged.mp4'), {
      seconds: 2,
      tags: { title: 'Talk \u202etitle', artist: 'Someone', comment: 'http://example.com/track' },
      audioTags: { title: 'Stream title', language: 'fra' },
      chapters: 2,
    });
    expect(await readTags(tagged)).toMatchObject({ tags: { title: 'Talk \u202etitle', major_brand: 'isom' }, chapters: 2 });

    const out = join(dir, 'tagged.mp3');
    await transcoder()(tagged, out, { title: 'file name' });
    // The source's own title wins over the file's name; no major_brand, minor_version, compatible_brands.
    expect(await readTags(out)).toEqual({ tags: { title: 'Talk title', artist: 'Someone', comment: 'http://example.com/track', encoded_by: 'earshot' }, chapters: 0 });
    const tag = id3Tag(await readFile(out));
    expect(tag.includes('TENC')).toBe(true); // "encoded by" earshot
    expect(tag.includes('TSSE')).toBe(false); // no encoder frame naming the ffmpeg version
    expect(tag.includes('Lavf')).toBe(false);
  });

  it('takes the title from the file\'s name, cleaned, when the source has none', async () => {
    const untagged = await makeVideo(join(dir, 'untagged.mp4'), { seconds: 2 });
    const out = join(dir, 'untagged.mp3');
    await transcoder()(untagged, out, { title: 'My \u202eHoliday\n' });
    expect(await readTags(out)).toEqual({ tags: { title: 'My Holiday', encoded_by: 'earshot' }, chapters: 0 });
    const bare = join(dir, 'bare.mp3');
    await transcoder()(untagged, bare);
    expect(await readTags(bare)).toEqual({ tags: { encoded_by: 'earshot' }, chapters: 0 });
  });

  it('puts a frame of a video in the MP3 as its cover (JPEG, attached picture), unless told not to', async () => {
    const out = join(dir, 'cover.mp3');
    await transcoder()(video, out);
    expect((await streams(out)).filter((s) => /^Video: mjpeg\b/.test(s))).toHaveLength(1);
    expect(id3Tag(await readFile(out)).includes('APIC')).toBe(true); // ID3's attached picture frame
    const plain = join(dir, 'no-cover.mp3');
    await transcoder({ coverArt: false })(video, plain);
    expect((await streams(plain)).filter((s) => s.startsWith('Video:'))).toEqual([]);
    const unasked = join(dir, 'cover-off.mp3');
    await transcoder()(video, unasked, { options: { cover: false } });
    expect((await streams(unasked)).filter((s) => s.startsWith('Video:'))).toEqual([]);
    expect(id3Tag(await readFile(unasked)).includes('APIC')).toBe(false);
  });

  it('finds a cover in a video with a frame only every 20 seconds, as a podcast\'s still picture has', async () => {
    const still = await makeVideo(join(dir, 'still.mp4'), { seconds: 60, fps: 0.05 });
    const out = join(dir, 'still.mp3');
    await transcoder()(still, out);
    expect((await streams(out)).filter((s) => /^Video: mjpeg\b/.test(s))).toHaveLength(1);
  });

  it('converts the track asked for, else the default one, and says which', async () => {
    const twoTracks = await makeTwoTracks(join(dir, 'two-tracks.mkv')); // 440 Hz, then 1000 Hz
    const second = join(dir, 'track-2.mp3');
    expect(await transcoder()(twoTracks, second, { options: { track: 2 } })).toMatchObject({ audioTrack: 2 });
    expect(Math.abs((await toneHz(second)) - 1000)).toBeLessThan(50);
    const first = join(dir, 'track-default.mp3');
    expect(await transcoder()(twoTracks, first)).toMatchObject({ audioTrack: 1 });
    expect(Math.abs((await toneHz(first)) - 440)).toBeLessThan(50);
    await expect(transcoder()(twoTracks, join(dir, 'track-3.mp3'), { options: { track: 3 } })).rejects.toThrow(
      new Unconvertible('The video has 2 audio tracks; track 3 was asked for.'),
    );
  });

  it('downmixes a loud 5.1 source to stereo without clipping: true peak at most -1 dBTP', async () => {
    const surround = await makeLoudSurround(join(dir, 'loud-5.1.mkv'));
    const out = join(dir, 'loud.mp3');
    await transcoder()(surround, out);
    expect((await streams(out)).find((s) => s.startsWith('Audio:'))).toMatch(/\bstereo\b/);
    expect((await loudness(out)).truePeak).toBeLessThanOrEqual(-1);
  });

  it('trims to start and end, to within 0.05 s', async () => {
    const out = join(dir, 'trimmed.mp3');
    const { durationSeconds } = await transcoder({ coverArt: false })(video, out, { options: { start: 1, end: 2.5 } });
    expect(Math.abs((await decodedSeconds(out)) - 1.5)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(durationSeconds - 1.5)).toBeLessThanOrEqual(0.05);
  });

  it('refuses a start at or past the end of the audio, saying how long the audio is', async () => {
    const out = join(dir, 'past-end.mp3');
    const refused = await transcoder()(video, out, { options: { start: 4.5 } }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(Unconvertible);
    expect((refused as Unconvertible).reason).toBe('The audio is 0:00:04 long: it cannot start at 4.5 seconds.');
  });

  it('normalises loudness to the target asked for, to within 1 LU, peaks under -1 dBTP', async () => {
    const quiet = await makeVideo(join(dir, 'quiet.mp4'), { seconds: 6 }); // a sine at 1/8 of full scale: about -21 LUFS
    expect(Math.abs((await loudness(quiet)).integrated + 16)).toBeGreaterThan(3);
    const out = join(dir, 'normalised.mp3');
    await transcoder()(quiet, out, { options: { loudness: -16 } });
    const measured = await loudness(out);
    expect(Math.abs(measured.integrated + 16)).toBeLessThanOrEqual(1);
    expect(measured.truePeak).toBeLessThanOrEqual(-1);
  });

  it('refuses ten hours of silence in a tiny FLAC from its header, naming the limit, before encoding any', async () => {
    const silence = await makeSilence(join(dir, 'ten-hours.flac'), 36_000);
    const out = join(dir, 'ten-hours.mp3');
    await expect(transcoder()(silence, out)).rejects.toThrow(new Unconvertible('The audio is 10:00:00 long; earshot converts up to 4:00:00.'));
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stops a file whose header understates its length at the limit, and refuses it rather than keep a part', async () => {
    const silence = await declareFlacSeconds(await makeSilence(join(dir, 'lying.flac'), 36_000), 60);
    const transcode = transcoder({ maxDurationSeconds: 120 });
    const out = join(dir, 'lying.mp3');
    await expect(transcode(silence, out)).rejects.toThrow(new Unconvertible('The audio runs past 0:02:00; earshot converts up to 0:02:00.'));
    // ffmpeg stopped one second past the cap, not after the ten hours the frames hold.
    expect(Math.abs((await decodedSeconds(out)) - 121)).toBeLessThan(1);
  });

  it('refuses an MP3 that reaches the size bound', async () => {
    // No cover: ffmpeg queues the first seconds of audio until the cover frame is encoded, and -fs
    // only sees them once written; on 4 s that is all of it. The bound is for hours, not seconds.
    const transcode = transcoder({ maxOutputBytes: 8 * 1024, coverArt: false });
    const out = join(dir, 'big.mp3');
    await expect(transcode(video, out)).rejects.toThrow(new Unconvertible('The audio runs past 4:00:00; earshot converts up to 4:00:00.'));
    expect(await decodedSeconds(out)).toBeLessThan(3); // of 4: stopped at the bound, not refused after
  });

  it('says a video without audio has no audio track', async () => {
    const mute = await makeVideo(join(dir, 'mute.mp4'), { seconds: 2, audio: false });
    await expect(transcoder()(mute, join(dir, 'mute.mp3'))).rejects.toThrow(new Unconvertible('The video has no audio track.'));
  });

  it('gives up at the wall-clock limit with a reason fit for the user', async () => {
    const transcode = transcoder({ timeoutSeconds: 0.001 });
    await expect(transcode(video, join(dir, 'slow.mp3'))).rejects.toThrow(new Unconvertible('The video took longer than 0.001 seconds to convert.'));
  });

  it('treats a missing ffmpeg as our failure (retried), not the file\'s', async () => {
    const transcode = transcoder({ ffmpegPath: join(dir, 'no-ffmpeg') });
    const error = await transcode(video, join(dir, 'x.mp3')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(Unconvertible);
  });

  it('refuses to follow a playlist to other files', async () => {
    const playlist = join(dir, 'list.m3u8');
    await writeFile(playlist, `#EXTM3U\n#EXTINF:4,\nfile:${video}\n#EXT-X-ENDLIST\n`);
    await expect(transcoder()(playlist, join(dir, 'p.mp3'))).rejects.toBeInstanceOf(Unconvertible);
  });

  it('leaves no ffmpeg running after the process that started it is SIGKILLed', async () => {
    // A day of silence: minutes of encoding, so ffmpeg is surely still at work when its parent dies.
    const input = await makeSilence(join(dir, 'day.flac'), 86_400);
    const script = join(dir, 'convert-child.mts');
    await writeFile(
      script,
      `import { mp3Transcoder } from ${JSON.stringify(fileURLToPath(new URL('./transcode.ts', import.meta.url)))};\n` +
        'const [ffmpegPath, input, output] = process.argv.slice(2);\n' +
        'await mp3Transcoder({ ffmpegPath, quality: 2, timeoutSeconds: 3600, maxDurationSeconds: 86_400 })(input, output);\n',
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script, ffmpegPath, input, join(dir, 'day.mp3')], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let encoder: Proc | undefined;
    try {
      encoder = await until(() => childrenOf(child.pid!).find((p) => p.comm === 'ffmpeg' && p.cmdline.includes('libmp3lame')), 120_000, 'the encoding ffmpeg to start');
      // Spawned once ffmpeg has a PID to watch: a moment after it.
      const watchdog = await until(() => childrenOf(child.pid!).find((p) => p.cmdline.includes('earshot-ffmpeg-watchdog')), 60_000, 'the watchdog to start');
      child.kill('SIGKILL');
      await exited;
      // Its CPU limit (-timelimit 3600) is an hour away: only the watchdog can end it this soon.
      await until(() => !alive(encoder!) && !alive(watchdog!), 15_000, `ffmpeg ${encoder.pid} to be gone`);
    } finally {
      child.kill('SIGKILL');
      if (encoder && alive(encoder)) process.kill(encoder.pid, 'SIGKILL');
    }
  });
});

describe('clock', () => {
  it('writes hours without padding, minutes and seconds with', () => {
    expect([clock(14_400), clock(36_000), clock(61.9), clock(360_000)]).toEqual(['4:00:00', '10:00:00', '0:01:01', '100:00:00']);
  });
});

describeWithService('ffprobe', ffprobePath !== undefined, 'MP3s as ffprobe reads them back', () => {
  const transcode = mp3Transcoder({ ffmpegPath, quality: 2, timeoutSeconds: 60 });

  it('finds the tags earshot chose, its cover picture, and nothing of the source\'s container', async () => {
    const dir = await tempDir();
    const source = await makeVideo(join(dir, 'in.mp4'), { seconds: 2, tags: { title: 'A talk', artist: 'Someone', album: 'Talks', date: '2026' }, chapters: 2 });
    const out = join(dir, 'out.mp3');
    await transcode(source, out, { title: 'file name' });
    const { format, streams } = await ffprobe(out);
    expect(format.format_name).toBe('mp3');
    expect(format.tags).toEqual({ title: 'A talk', artist: 'Someone', album: 'Talks', date: '2026', encoded_by: 'earshot' });
    expect(streams.map((s) => [s.codec_type, s.codec_name, s.disposition?.attached_pic])).toEqual([['audio', 'mp3', 0], ['video', 'mjpeg', 1]]);
  });

  it('finds one channel after channels=mono, the trimmed length, and no picture after cover=off', async () => {
    const dir = await tempDir();
    const source = await makeVideo(join(dir, 'in.mp4'), { seconds: 4 });
    const out = join(dir, 'out.mp3');
    await transcode(source, out, { options: { channels: 'mono', start: 1, end: 2.5, cover: false } });
    const { format, streams } = await ffprobe(out);
    expect(streams).toHaveLength(1);
    expect(streams[0]).toMatchObject({ codec_type: 'audio', codec_name: 'mp3', channels: 1 });
    expect(Math.abs(Number(format.duration) - 1.5)).toBeLessThanOrEqual(0.05);
  });
}, "apt-get install ffmpeg (Debian's ffmpeg package has ffprobe)");

describe('outputBound', () => {
  it('holds the cap (plus the second -t allows) at 320 kbit/s, the top rate of any LAME frame', () => {
    expect(outputBound(14_400)).toBeGreaterThanOrEqual((14_401 * 320_000) / 8);
    expect(outputBound(14_400)).toBeLessThan((14_401 * 320_000) / 8 + 1024 * 1024);
  });
});

/** An MP3's ID3v2 tag, whole (its size is in its header: 4 bytes of 7 bits each). */
function id3Tag(mp3: Buffer): Buffer {
  if (mp3.toString('latin1', 0, 3) !== 'ID3') return mp3.subarray(0, 0);
  const size = ((mp3[6]! & 0x7f) << 21) | ((mp3[7]! & 0x7f) << 14) | ((mp3[8]! & 0x7f) << 7) | (mp3[9]! & 0x7f);
  return mp3.subarray(0, 10 + size);
}

/** The bytes after the ID3v2 tag (which may hold a cover picture), where LAME's first frame is. */
function firstFrame(mp3: Buffer): Buffer {
  const start = id3Tag(mp3).length;
  return mp3.subarray(start, start + 4096);
}

interface Proc {
  pid: number;
  comm: string;
  startTime: string;
  cmdline: string;
}

/** Processes whose parent is `ppid`, from /proc. */
function childrenOf(ppid: number): Proc[] {
  const found: Proc[] = [];
  for (const pid of readdirNumbers('/proc')) {
    const stat = procStat(pid);
    if (stat && stat.ppid === ppid) found.push({ pid, comm: stat.comm, startTime: stat.startTime, cmdline: read(`/proc/${pid}/cmdline`)?.replaceAll('\0', ' ') ?? '' });
  }
  return found;
}

/** Running: its pid still names the same process (same start time) and it is not a zombie. */
function alive(proc: Proc): boolean {
  const stat = procStat(proc.pid);
  return !!stat && stat.startTime === proc.startTime && stat.state !== 'Z' && stat.state !== 'X';
}

function procStat(pid: number) {
  const text = read(`/proc/${pid}/stat`);
  if (!text) return undefined;
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
  const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { comm, state: fields[0]!, ppid: Number(fields[1]), startTime: fields[19]! };
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readdirNumbers(dir: string): number[] {
  return readdirSync(dir).filter((n) => /^\d+$/.test(n)).map(Number);
}

async function until<T>(check: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
