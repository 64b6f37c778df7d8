/**
 * Long audio encoded as several stretches at once, one ffmpeg each, joined into the MP3 one
 * encode would have made (see mp3-join.ts). Every stretch starts on the 1152-sample frame grid
 * of the whole, a few frames early (LAME's analysis warms up on audio the join then drops), and
 * runs a few frames past its end (its last kept frames are not the encoder's flush).
 */
import { samplesPerFrame } from './mp3-frames';

export interface Stretch {
  /** First sample of the audio this stretch encodes, from the start of the conversion's audio. */
  startSample: number;
  /** Samples it encodes; to the end of the audio when absent (the last stretch). */
  samples?: number;
  /** First frame of its encode kept in the join, and how many (the rest, for the last). */
  from: number;
  count?: number;
}

/** Frames encoded before a stretch's first kept frame: LAME's analysis needs a few granules. */
export const prerollFrames = 8;
/** Frames encoded past a stretch's last kept frame: more than a join may move later (mp3-join's slack). */
export const overrunFrames = 8;

/**
 * `count` stretches of about equal length over `totalSamples` (what the source declares); the
 * last runs to whatever end the audio really has.
 */
export function stretches(totalSamples: number, count: number): Stretch[] {
  const frames = Math.ceil(totalSamples / samplesPerFrame);
  const bounds = Array.from({ length: count + 1 }, (_, k) => Math.round((k * frames) / count));
  return Array.from({ length: count }, (_, k) => {
    const firstFrame = k === 0 ? 0 : bounds[k]! - prerollFrames;
    const startSample = firstFrame * samplesPerFrame;
    const from = bounds[k]! - firstFrame;
    if (k === count - 1) return { startSample, from };
    return { startSample, samples: (bounds[k + 1]! + overrunFrames) * samplesPerFrame - startSample, from, count: bounds[k + 1]! - bounds[k]! };
  });
}

/**
 * Runs `work(0)` … `work(count - 1)`, `at` at a time, in order. On a failure no more are
 * started, and it rejects once the running ones have settled: no ffmpeg outlives it.
 */
export async function inTurn(count: number, at: number, work: (k: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async () => {
    while (next < count && !failure) {
      const k = next++;
      await work(k).catch((err: unknown) => {
        failure ??= { err };
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(at, count) }, lane));
  if (failure) throw failure.err;
}
