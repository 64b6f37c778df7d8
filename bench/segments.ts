/**
 * B7: a long video converted in stretches at once (convert's default on this machine: as many
 * as its CPUs) against the single-pass encode with the same ffmpeg, both through the transcoder
 * convert runs, interleaved. The two MP3s are then decoded: a joined MP3 plays as many samples
 * as the single pass's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuLimit } from '../functions/convert/cpus';
import { mp3Transcoder } from '../functions/convert/transcode';
import { decodedSeconds } from '../test/media';
import { benchVideo } from './inputs';
import { interleaved, time, type Row } from './measure';

export async function benchSegments({ seconds, runs, ffmpegPath, label, workers = cpuLimit() }: { seconds: number; runs: number; ffmpegPath: string; label: string; workers?: number }): Promise<Row> {
  const video = await benchVideo(seconds);
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-segments-'));
  try {
    const options = { ffmpegPath, quality: 2, timeoutSeconds: 7200, coverArt: false };
    const single = mp3Transcoder({ ...options, workers: 1 });
    const parallel = mp3Transcoder({ ...options, workers, segmentSeconds: Math.min(60, seconds / 2) });
    let segments = 0;
    // ffmpeg writes no file that exists: each run's is removed first, the last kept to decode.
    const fresh = async (name: string) => {
      await rm(join(dir, name), { force: true });
      return join(dir, name);
    };
    const m = await interleaved(
      runs,
      async () => {
        const out = await fresh('single.mp3');
        return time(() => single(video, out));
      },
      async () => {
        const out = await fresh('parallel.mp3');
        return time(async () => {
          segments = (await parallel(video, out)).segments;
        });
      },
    );
    const [a, b] = await Promise.all([decodedSeconds(join(dir, 'single.mp3')), decodedSeconds(join(dir, 'parallel.mp3'))]);
    const speedup = m.baseline / m.subject;
    const length = seconds >= 60 ? `${seconds / 60}-min` : `${seconds}-s`;
    return {
      id: 'B7',
      measure: `convert a ${length} MP4 in ${segments} stretches at once (${workers} CPUs), ${label}`,
      value: m.subject / 1000,
      unit: 's',
      baseline: { name: 'single pass', value: m.baseline / 1000 },
      ratio: m.subject / m.baseline,
      target: '≥ 1.8× faster',
      met: speedup >= 1.8,
      note: `${speedup.toFixed(2)}× faster; decoded length ${a === b ? 'the same as the single pass' : `differs: ${b} against ${a} s`}`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
