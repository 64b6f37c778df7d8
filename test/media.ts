/** Real media made with ffmpeg, for tests. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';

const run = promisify(execFile);
export const ffmpegPath = process.env.FFMPEG_PATH || ffmpegInstaller.path;

/**
 * An H.264 + AAC MP4 with its index (moov) at the end, as cameras and most tools write it:
 * the case that cannot be read from a pipe.
 */
export async function makeVideo(path: string, { seconds = 3, audio = true } = {}): Promise<string> {
  const inputs = ['-f', 'lavfi', '-i', `testsrc=duration=${seconds}:size=160x120:rate=15`];
  if (audio) inputs.push('-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}:sample_rate=44100`);
  const codecs = ['-c:v', 'libx264', '-preset', 'ultrafast', ...(audio ? ['-c:a', 'aac', '-b:a', '96k'] : []), '-shortest'];
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', ...inputs, ...codecs, '-f', 'mp4', path]);
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
