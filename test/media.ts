/** Real media made with ffmpeg, for tests. */
import { execFile } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';

const run = promisify(execFile);
export const ffmpegPath = process.env.FFMPEG_PATH || ffmpegInstaller.path;

/**
 * An H.264 + AAC MP4 with its index (moov) at the end, as cameras and most tools write it:
 * the case that cannot be read from a pipe. `tags` go on the container, `audioTags` on its
 * audio stream, and `chapters` splits it into that many chapters: what a source may carry.
 */
export async function makeVideo(
  path: string,
  { seconds = 3, audio = true, tags = {}, audioTags = {}, chapters = 0 }: { seconds?: number; audio?: boolean; tags?: Record<string, string>; audioTags?: Record<string, string>; chapters?: number } = {},
): Promise<string> {
  const inputs = ['-f', 'lavfi', '-i', `testsrc=duration=${seconds}:size=160x120:rate=15`];
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

/** Decodes a file completely and returns its duration in seconds (from the decoder, not the header). */
export async function decodedSeconds(path: string): Promise<number> {
  const { stderr } = await run(ffmpegPath, ['-hide_banner', '-nostats', '-v', 'info', '-i', path, '-f', 'null', '-progress', 'pipe:2', '-']);
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
