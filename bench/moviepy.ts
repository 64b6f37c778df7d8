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
import { mp3Transcoder } from '../functions/convert/transcode';
import { createLogger } from '../shared/log';
import { openStores } from '../shared/stores';
import { converted, storedUpload } from './convert';
import { benchDir, benchVideo } from './inputs';
import { interleaved, time, type Row } from './measure';

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

/** earshot's convert function (with `ffmpegPath`) on the bench video, against moviepy on the same file. */
export async function benchAgainstMoviepy({ seconds, runs, ffmpegPath, label }: { seconds: number; runs: number; ffmpegPath: string; label: string }): Promise<Row> {
  const video = await benchVideo(seconds);
  const py = await moviepyPython();
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-moviepy-'));
  try {
    const stores = await openStores(pathToFileURL(join(dir, 'store')));
    const options = { ffmpegPath, quality: 2, timeoutSeconds: 3600 };
    const app = createApp({ ...stores, transcode: mp3Transcoder(options), leaseMs: 60_000, log: createLogger({}, { level: 'error' }) });
    const baseline = () =>
      time(async () => {
        const out = join(dir, `${randomUUID()}.mp3`);
        await run(py, ['-c', convertScript, video, out], { maxBuffer: 64 * 1024 * 1024 });
        await rm(out);
      });
    const subject = async () => {
      const event = await storedUpload(stores, video);
      return time(async () => converted(await app.request('/', { method: 'POST', ...event })));
    };
    const m = await interleaved(runs, baseline, subject);
    await stores.close();
    const ratio = m.subject / m.baseline;
    return {
      id: 'B1',
      measure: `convert ${seconds / 60}-min MP4, ${label}, against the original system's converter`,
      value: m.subject / 1000,
      unit: 's',
      baseline: { name: 'moviepy 1.0.3', value: m.baseline / 1000 },
      ratio,
      target: '≤ 0.33× (3× faster)',
      met: ratio <= 1 / 3,
      note: `${(1 / ratio).toFixed(1)}× faster than moviepy`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
