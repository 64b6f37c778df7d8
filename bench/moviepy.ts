/**
 * B1's outside baseline: the converter of the Python system earshot replaces, moviepy 1.0.3
 * (`VideoFileClip(path).audio.write_audiofile(mp3)`, CBR 128k), installed from PyPI into a
 * venv of its own under .bench/ on first use, so that nothing of it is needed anywhere else.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createApp } from '../functions/convert/app';
import { cpuLimit } from '../functions/convert/cpus';
import { mp3Transcoder } from '../functions/convert/transcode';
import { createLogger } from '../shared/log';
import { openStores } from '../shared/stores';
import { converted, storedUpload } from './convert';
import { benchDir, benchVideo } from './inputs';
import { median, time, type Row } from './measure';

const run = promisify(execFile);
const venv = join(benchDir, 'moviepy');
const python = join(venv, 'bin', 'python');
/** The original system's own call, as its converter made it. */
const convertScript = 'import sys\nfrom moviepy.editor import VideoFileClip\nVideoFileClip(sys.argv[1]).audio.write_audiofile(sys.argv[2], logger=None)';

/** The venv's python with moviepy 1.0.3 in it, made on first use. */
export async function moviepyPython(): Promise<string> {
  try {
    await access(python);
    return python;
  } catch {
    await run('python3', ['-m', 'venv', venv]);
    await run(join(venv, 'bin', 'pip'), ['install', '--quiet', 'moviepy==1.0.3'], { timeout: 10 * 60_000 });
    return python;
  }
}

export interface Path {
  ffmpegPath: string;
  label: string;
  /** The ffmpeg convert chooses on this machine: the row the target is for. */
  chosen: boolean;
}

/** moviepy's interpreter beside it: the ffmpeg (imageio-ffmpeg's static build) moviepy itself runs, to measure as one more path. */
export async function moviepyFfmpeg(): Promise<string | undefined> {
  const py = await moviepyPython();
  const { stdout } = await run(py, ['-c', 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())']).catch(() => ({ stdout: '' }));
  return stdout.trim() || undefined;
}

/**
 * earshot's convert function as it runs by default here (stretches at once on every CPU) on the
 * bench video, with each ffmpeg in `paths`, against moviepy on the same file: moviepy, then each
 * path, `runs` times over; medians.
 */
export async function benchAgainstMoviepy({ seconds, runs, paths }: { seconds: number; runs: number; paths: Path[] }): Promise<Row[]> {
  const video = await benchVideo(seconds);
  const py = await moviepyPython();
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-moviepy-'));
  try {
    const stores = await openStores(pathToFileURL(join(dir, 'store')));
    const workers = cpuLimit();
    const apps = paths.map(({ ffmpegPath }) => {
      const options = { ffmpegPath, quality: 2, timeoutSeconds: 3600, workers };
      return createApp({ ...stores, transcode: mp3Transcoder(options), leaseMs: 60_000, log: createLogger({}, { level: 'error' }) });
    });
    const moviepy: number[] = [];
    const ours: number[][] = paths.map(() => []);
    for (let i = 0; i < runs; i++) {
      moviepy.push(
        await time(async () => {
          const out = join(dir, `${randomUUID()}.mp3`);
          await run(py, ['-c', convertScript, video, out], { maxBuffer: 64 * 1024 * 1024 });
          await rm(out);
        }),
      );
      for (const [k, app] of apps.entries()) {
        const event = await storedUpload(stores, video);
        ours[k]!.push(await time(async () => converted(await app.request('/', { method: 'POST', ...event }))));
      }
    }
    await stores.close();
    const baseline = median(moviepy);
    return paths.map((path, k) => {
      const ratio = median(ours[k]!) / baseline;
      return {
        id: 'B1',
        measure: `convert ${seconds / 60}-min MP4 as convert does by default (${workers} CPUs), ${path.label}, against the original system's converter`,
        value: median(ours[k]!) / 1000,
        unit: 's',
        baseline: { name: 'moviepy 1.0.3', value: baseline / 1000 },
        ratio,
        target: path.chosen ? '≤ 0.33× (3× faster)' : '—',
        met: path.chosen ? ratio <= 1 / 3 : null,
        note: `${(1 / ratio).toFixed(1)}× faster than moviepy${path.chosen ? ' (the ffmpeg convert chooses here)' : ''}`,
      };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
