/** Real media made with ffmpeg, for tests. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { chooseFfmpeg } from '../functions/convert/ffmpeg-binary';

const run = promisify(execFile);
/** The ffmpeg convert chooses on this machine (FFMPEG_PATH, else the system's, else npm's): tests run what users run. */
export const chosenFfmpeg = await chooseFfmpeg(process.env, async () => ffmpegInstaller.path);
export const ffmpegPath = chosenFfmpeg.path;

/**
 * An H.264 + AAC MP4 with its index (moov) at the end, as cameras and most tools write it:
 * the case that cannot be read from a pipe. `tags` go on the container, `audioTags` on its
 * audio stream, and `chapters` splits it into that many chapters: what a source may carry.
 */
export async function makeVideo(
  path: string,
  {
    seconds = 3,
    audio = true,
    tags = {},
    audioTags = {},
    chapters = 0,
    fps = 15,
  }: { seconds?: number; audio?: boolean; tags?: Record<string, string>; audioTags?: Record<string, string>; chapters?: number; fps?: number } = {},
): Promise<string> {
  // fps below 1: a slideshow, or a podcast's still picture, a frame every few seconds.
  const inputs = ['-f', 'lavfi', '-i', `testsrc=duration=${seconds}:size=160x120:rate=${fps}`];
  if (audio) inputs.push('-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}:sample_rate=44100`);
  const codecs = ['-c:v', 'libx264', '-preset', 'ultrafast', ...(audio ? ['-c:a', 'aac', '-b:a', '96k'] : []), '-shortest'];
  const metadata = [
    ...Object.entries(tags).flatMap(([k, v]) => ['-metadata', `${k}=${v}`]),
    ...Object.entries(audioTags).flatMap(([k, v]) => ['-metadata:s:a:0', `${k}=${v}`]),
  ];
  if (chapters > 0) {
    const length = Math.floor((seconds * 1000) / chapters);
    const sections = Array.from({ length: chapters }, (_, i) => `[CHAPTER]\nTIMEBASE=1/1000\nSTART=${i * length}\nEND=${(i + 1) * length}\ntitle=Chapter ${i + 1}\n`);
    const file = `${path}.chapters.txt`;
    await writeFile(file, `;FFMETADATA1\n${sections.join('')}`);
    inputs.push('-f', 'ffmetadata', '-i', file);
    metadata.push('-map', '0:v', ...(audio ? ['-map', '1:a'] : []), '-map_chapters', String(audio ? 2 : 1));
  }
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', ...inputs, ...codecs, ...metadata, '-f', 'mp4', path]);
  return path;
}

/**
 * Silence in a FLAC that declares and holds `seconds` of it: at a tiny sample rate and in the
 * largest FLAC frames, ten hours take ~16 KB (at 8 kHz ~72 KB, the size of the file in the
 * report that started this) and well under a second to make.
 */
export async function makeSilence(path: string, seconds: number, { sampleRate = 1000 } = {}): Promise<string> {
  const source = `anullsrc=r=${sampleRate}:cl=mono:nb_samples=65535`;
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, '-t', String(seconds), '-c:a', 'flac', '-frame_size', '65535', '-f', 'flac', path]);
  return path;
}

/**
 * The tags and chapters of a file as ffmpeg reads them (`-f ffmetadata`). ffmpeg replaces any
 * `encoder` tag in this listing with its own (left out here), so look for that in the bytes.
 */
export async function readTags(path: string): Promise<{ tags: Record<string, string>; chapters: number }> {
  const { stdout } = await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-i', path, '-fflags', '+bitexact', '-f', 'ffmetadata', '-']);
  const [global = '', ...chapters] = stdout.split(/^\[CHAPTER\]$/m);
  const tags = Object.fromEntries(
    global
      .split('\n')
      .filter((line) => line && !line.startsWith(';') && line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  return { tags, chapters: chapters.length };
}

/**
 * Rewrites a FLAC's STREAMINFO so that it declares `seconds` whatever the frames after it
 * hold: a file that lies about its length in its header.
 */
export async function declareFlacSeconds(path: string, seconds: number): Promise<string> {
  const bytes = await readFile(path);
  if (bytes.toString('latin1', 0, 4) !== 'fLaC' || (bytes[4]! & 0x7f) !== 0) throw new Error(`${path} does not start with a FLAC STREAMINFO`);
  // STREAMINFO from byte 8: sample rate is 20 bits at bit 80, the sample count 36 bits at bit 108.
  const sampleRate = (bytes[18]! << 12) | (bytes[19]! << 4) | (bytes[20]! >> 4);
  const samples = BigInt(Math.round(seconds * sampleRate));
  bytes[21] = (bytes[21]! & 0xf0) | Number((samples >> 32n) & 0xfn);
  bytes.writeUInt32BE(Number(samples & 0xffffffffn), 22);
  await writeFile(path, bytes);
  return path;
}

/** Decodes a file's first audio stream completely and returns its duration in seconds (from the decoder, not the header; a cover picture's stream would give its own time). */
export async function decodedSeconds(path: string): Promise<number> {
  const { stderr } = await run(ffmpegPath, ['-hide_banner', '-nostats', '-v', 'info', '-i', path, '-map', '0:a:0', '-f', 'null', '-progress', 'pipe:2', '-']);
  const times = [...stderr.matchAll(/out_time_us=(\d+)/g)];
  if (times.length === 0) throw new Error(`ffmpeg could not decode ${path}:\n${stderr}`);
  return Number(times.at(-1)![1]) / 1e6;
}

/** What ffmpeg says the file's first audio stream is, e.g. "mp3". */
export async function audioCodec(path: string): Promise<string | undefined> {
  const { stderr } = await run(ffmpegPath, ['-hide_banner', '-i', path, '-f', 'null', '-t', '0', '-']).catch((e) => e);
  return /Audio: (\w+)/.exec(stderr)?.[1];
}

/** An ffmpeg that reads its input at the pace it plays (`-re`): a conversion lasts as long as the clip, so its progress can be watched. */
export async function pacedFfmpeg(dir: string): Promise<string> {
  const paced = join(dir, 'ffmpeg-paced');
  await writeFile(paced, `#!/bin/sh\nexec '${ffmpegPath}' -re "$@"\n`);
  await chmod(paced, 0o755);
  return paced;
}

/**
 * A Matroska file with two audio tracks that differ in pitch (track 1 at `tones[0]` Hz, track 2
 * at `tones[1]`), the first marked default: which track a conversion took can be heard.
 */
export async function makeTwoTracks(path: string, { seconds = 3, tones = [440, 1000] as const } = {}): Promise<string> {
  const inputs = tones.flatMap((hz) => ['-f', 'lavfi', '-i', `sine=frequency=${hz}:duration=${seconds}:sample_rate=44100`]);
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', ...inputs, '-map', '0:a', '-map', '1:a', '-c:a', 'flac', '-disposition:a:0', 'default', '-disposition:a:1', '0', '-f', 'matroska', path]);
  return path;
}

/**
 * 5.1 audio as loud as it gets: every channel a full-scale tone, all in phase, kept lossless
 * (FLAC in Matroska) so nothing but the conversion changes its peaks. A plain downmix of it clips.
 */
export async function makeLoudSurround(path: string, { seconds = 3 } = {}): Promise<string> {
  const tone = '0.99*sin(2*PI*440*t)';
  const source = `aevalsrc=${Array(6).fill(tone).join('|')}:channel_layout=5.1:sample_rate=48000:duration=${seconds}`;
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, '-c:a', 'flac', '-f', 'matroska', path]);
  return path;
}

/** Integrated loudness (LUFS) and true peak (dBTP) of a file's audio, by ffmpeg's EBU R128 meter. */
export async function loudness(path: string): Promise<{ integrated: number; truePeak: number }> {
  const { stderr } = await run(ffmpegPath, ['-hide_banner', '-nostats', '-i', path, '-map', '0:a:0', '-af', 'ebur128=peak=true', '-f', 'null', '-']);
  const summary = stderr.slice(stderr.lastIndexOf('Summary:'));
  const integrated = /I:\s+(-?[\d.]+|-inf) LUFS/.exec(summary)?.[1];
  const truePeak = /True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS/.exec(summary)?.[1];
  if (integrated === undefined || truePeak === undefined) throw new Error(`no EBU R128 summary for ${path}:\n${stderr.slice(-2000)}`);
  return { integrated: Number(integrated), truePeak: Number(truePeak) };
}

/** The pitch of a file's (tone) audio in Hz, from its zero-crossing rate at a known sample rate. */
export async function toneHz(path: string): Promise<number> {
  const sampleRate = 48_000;
  const { stderr } = await run(ffmpegPath, ['-hide_banner', '-nostats', '-i', path, '-map', '0:a:0', '-af', `aresample=${sampleRate},astats=metadata=0`, '-f', 'null', '-']);
  const rate = [...stderr.matchAll(/Zero crossings rate: ([\d.]+)/g)].at(-1)?.[1];
  if (rate === undefined) throw new Error(`no astats for ${path}:\n${stderr.slice(-2000)}`);
  return (Number(rate) * sampleRate) / 2; // a sine crosses zero twice a period
}

/** ffmpeg's one-line description of each stream of a file, e.g. "Video: mjpeg (Baseline), …". */
export async function streams(path: string): Promise<string[]> {
  const { stderr } = await run(ffmpegPath, ['-hide_banner', '-i', path, '-f', 'null', '-t', '0', '-']).catch((e: { stderr: string }) => e);
  const input = stderr.slice(stderr.indexOf('Input #0'), stderr.search(/^Output #0|^Stream mapping/m) >>> 0);
  return [...input.matchAll(/^\s*Stream #0:\d+\S*: (.*)$/gm)].map((m) => m[1]!);
}

/** Debian's ffprobe (the npm ffmpeg ships none): reads files back with another tool than the one that wrote them. */
export const ffprobePath = ['/usr/bin/ffprobe', '/usr/local/bin/ffprobe'].find((p) => existsSync(p));

export interface Probed {
  format: { format_name: string; duration?: string; tags?: Record<string, string> };
  streams: { codec_type: string; codec_name: string; channels?: number; disposition?: { attached_pic?: number } }[];
}

/** A file's container, tags and streams as ffprobe reports them. */
export async function ffprobe(path: string): Promise<Probed> {
  if (!ffprobePath) throw new Error('no ffprobe');
  const { stdout } = await run(ffprobePath, ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', path]);
  return JSON.parse(stdout) as Probed;
}

/**
 * Stereo AAC in an MP4 (no video): `sweep`, two sine sweeps (100 Hz→8 kHz left, 150 Hz→6 kHz
 * right), or `speech`, pink noise shaped like speech (syllables at ~4 Hz, a pause every 3 s):
 * the two hardest cases for a join, a pure tone a seam would click in and noise a seam would
 * show in as a step of level.
 */
export async function makeProgramme(path: string, kind: 'sweep' | 'speech', seconds: number): Promise<string> {
  const sweep = (from: number, to: number) => `0.5*sin(2*PI*(${from}*t+${(to - from) / (2 * seconds)}*t*t))`;
  const inputs =
    kind === 'sweep'
      ? ['-f', 'lavfi', '-i', `aevalsrc=${sweep(100, 8000)}|${sweep(150, 6000)}:s=44100:d=${seconds}`]
      : ['-f', 'lavfi', '-i', `anoisesrc=color=pink:amplitude=0.5:sample_rate=44100:duration=${seconds}:seed=7`, '-af', `aformat=channel_layouts=stereo,volume='(0.55+0.45*sin(2*PI*4.2*t))*gt(mod(t,3),0.4)':eval=frame`];
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', ...inputs, '-c:a', 'aac', '-b:a', '160k', '-f', 'mp4', path]);
  return path;
}

/** The audio of a file decoded as ffmpeg plays it (gapless: encoder delay and padding removed), interleaved float samples. */
export async function decodePcm(path: string): Promise<{ samples: Float32Array; channels: number }> {
  const { stdout } = await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-i', path, '-map', '0:a:0', '-ac', '2', '-f', 'f32le', '-'], { encoding: 'buffer', maxBuffer: 1 << 30 });
  return { samples: new Float32Array(Uint8Array.from(stdout).buffer), channels: 2 }; // copied: aligned to 4
}
