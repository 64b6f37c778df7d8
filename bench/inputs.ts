/** Benchmark inputs, made on first use and kept under .bench/inputs. */
import { execFile } from 'node:child_process';
import { access, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';

const run = promisify(execFile);
export const benchDir = join(process.cwd(), '.bench');

/**
 * An H.264 + AAC MP4 of `seconds` with pink noise for audio (LAME's worst case is noise, not a
 * sine), index at the end as cameras write it.
 */
export async function benchVideo(seconds: number): Promise<string> {
  const dir = join(benchDir, 'inputs');
  const path = join(dir, `pink-${seconds}s.mp4`);
  try {
    await access(path);
    return path;
  } catch {
    await mkdir(dir, { recursive: true });
  }
  const temp = `${path}.${process.pid}.tmp.mp4`;
  await run(ffmpegInstaller.path, [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc=size=320x240:rate=10:duration=${seconds}`,
    '-f', 'lavfi', '-i', `anoisesrc=color=pink:sample_rate=44100:amplitude=0.3:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-b:a', '128k', '-shortest', '-f', 'mp4', temp,
  ]);
  await rename(temp, path);
  return path;
}
