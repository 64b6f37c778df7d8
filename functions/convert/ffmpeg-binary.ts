import { execFile } from 'node:child_process';
import { delimiter, join } from 'node:path';

/** The ffmpeg convert runs, and why that one. */
export interface FfmpegBinary {
  path: string;
  /** ffmpeg's own first line, e.g. "ffmpeg version 7.1.5-0+deb13u1". */
  version: string;
  source: 'FFMPEG_PATH' | 'system' | 'npm';
}

/** A binary at `path` that runs and can encode MP3 (libmp3lame): its version line, else why not. */
export function checkFfmpeg(path: string): Promise<{ version: string } | { unusable: string }> {
  return new Promise((resolve) => {
    execFile(path, ['-hide_banner', '-encoders'], { timeout: 10_000, maxBuffer: 4 << 20 }, (err, stdout) => {
      if (err) return resolve({ unusable: err.message.split('\n')[0]! });
      if (!/^\s*A\S*\s+libmp3lame\b/m.test(stdout)) return resolve({ unusable: 'it has no libmp3lame encoder' });
      execFile(path, ['-version'], { timeout: 10_000 }, (versionErr, versionOut) => {
        resolve(versionErr ? { unusable: versionErr.message.split('\n')[0]! } : { version: versionOut.split('\n')[0]!.trim() });
      });
    });
  });
}

/**
 * The fastest ffmpeg to be had: `FFMPEG_PATH` when set (it must work), else the system's (on
 * `PATH`), else the npm package's 2018 static build, which always works but encodes at about
 * half the speed of a current one. Each is checked once, here, at start.
 */
export async function chooseFfmpeg(env: { FFMPEG_PATH?: string; PATH?: string }, npmPath: () => Promise<string>): Promise<FfmpegBinary> {
  if (env.FFMPEG_PATH) {
    const checked = await checkFfmpeg(env.FFMPEG_PATH);
    if ('unusable' in checked) throw new Error(`FFMPEG_PATH=${env.FFMPEG_PATH} cannot be used: ${checked.unusable}`);
    return { path: env.FFMPEG_PATH, version: checked.version, source: 'FFMPEG_PATH' };
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const checked = await checkFfmpeg(join(dir, 'ffmpeg'));
    if ('version' in checked) return { path: join(dir, 'ffmpeg'), version: checked.version, source: 'system' };
  }
  const path = await npmPath();
  const checked = await checkFfmpeg(path);
  if ('unusable' in checked) throw new Error(`the npm ffmpeg at ${path} cannot be used: ${checked.unusable}`);
  return { path, version: checked.version, source: 'npm' };
}
