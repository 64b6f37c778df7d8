import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodePcm, ffmpegPath, ffprobe, ffprobePath, makeProgramme, readTags } from '../../test/media';
import { tempDir } from '../../test/support';
import { audioStart, readFrames, samplesPerFrame } from './mp3-frames';
import { inTurn, overrunFrames, prerollFrames, stretches } from './segments';
import { mp3Transcoder } from './transcode';

type Pcm = Awaited<ReturnType<typeof decodePcm>>;

describe('stretches', () => {
  it('gives every frame of the whole to exactly one stretch, each starting on the frame grid, a few frames early', () => {
    for (const [samples, count] of [[44_100 * 600, 2], [48_000 * 2400 + 17, 3], [44_100 * 121, 4]] as const) {
      const parts = stretches(samples, count);
      expect(parts).toHaveLength(count);
      let next = 0; // the next frame of the whole to be kept
      parts.forEach((part, k) => {
        expect(part.startSample % samplesPerFrame).toBe(0);
        expect(part.startSample / samplesPerFrame + part.from).toBe(next);
        expect(part.from).toBe(k === 0 ? 0 : prerollFrames);
        if (k < count - 1) {
          expect(part.samples).toBe((part.from + part.count! + overrunFrames) * samplesPerFrame);
          next += part.count!;
        } else {
          expect(part.samples).toBeUndefined(); // to the end, whatever it is
          expect(part.count).toBeUndefined();
        }
      });
      expect(next).toBeGreaterThan(0);
      const lastStart = parts.at(-1)!.startSample / samplesPerFrame + parts.at(-1)!.from;
      expect(Math.abs(lastStart - (Math.ceil(samples / samplesPerFrame) * (count - 1)) / count)).toBeLessThanOrEqual(1);
    }
  });
});

const rms = (a: Float32Array, b: Float32Array, from = 0, to = Math.min(a.length, b.length)) => {
  let sum = 0;
  for (let i = from; i < to; i++) sum += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(sum / Math.max(1, to - from));
};

describe('encoding in stretches', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  const transcoder = (workers: number) => mp3Transcoder({ ffmpegPath, quality: 2, timeoutSeconds: 300, coverArt: false, workers, segmentSeconds: 12 });

  for (const kind of ['sweep', 'speech'] as const) {
    it(`joins 3 encodes of ${kind} into what one encode makes: same samples, same length, no seam`, async () => {
      const source = await makeProgramme(join(dir, `${kind}.mp4`), kind, 40);
      const one = join(dir, `${kind}-one.mp3`);
      const three = join(dir, `${kind}-three.mp3`);
      expect((await transcoder(1)(source, one)).segments).toBe(1);
      const joined = await transcoder(3)(source, three, { title: `A ${kind}` });
      expect(joined.segments).toBe(3);
      // The tags are the whole's, as one encode writes them.
      expect((await readTags(three)).tags).toMatchObject({ title: `A ${kind}`, encoded_by: 'earshot' });

      const [original, single, parallel] = (await Promise.all([source, one, three].map(decodePcm))) as [Pcm, Pcm, Pcm];
      // Duration: not within a frame but to the sample, as a gapless player plays it.
      expect(parallel.samples.length).toBe(single.samples.length);
      expect(Math.abs(single.samples.length / 2 - 40 * 44_100)).toBeLessThan(samplesPerFrame);
      expect(joined.durationSeconds).toBeCloseTo(single.samples.length / 2 / 44_100, 3);
      // The info frame counts the frames there are.
      const bytes = await readFile(three);
      const frames = readFrames(bytes, audioStart(bytes));
      const info = bytes.indexOf('Xing', frames[0]!.offset);
      expect(info).toBeGreaterThan(0);
      expect(bytes.readUInt32BE(info + 8)).toBe(frames.length - 1);

      // Around each join (±4 frames) the joined MP3 plays what the single encode plays, to a
      // quarter of the encoder's own error there at most: measured 0 (the same samples) on both.
      const seams = stretches(40 * 44_100, 3).slice(1).map((s) => (s.startSample / samplesPerFrame + s.from) * samplesPerFrame - 1105);
      for (const seam of seams) {
        const [from, to] = [2 * (seam - 4 * samplesPerFrame), 2 * (seam + 4 * samplesPerFrame)]; // interleaved stereo
        const seamError = rms(parallel.samples, single.samples, from, to);
        const encoderError = rms(single.samples, original.samples, from, to);
        expect(seamError).toBeLessThanOrEqual(0.25 * encoderError);
      }
      // Elsewhere a stretch may spend its bit reservoir differently from the single encode (it
      // started with an empty one): another encode as good, not a worse one. Measured: 0 for
      // speech, 11 % of the encoder's error for the sweep.
      const wholeError = rms(parallel.samples, single.samples);
      expect(wholeError).toBeLessThanOrEqual(0.25 * rms(single.samples, original.samples));
      if (ffprobePath) expect((await ffprobe(three)).format.duration).toBe((await ffprobe(one)).format.duration);
    });
  }
});

describe('encoding in stretches, when the audio is not what the container declares', () => {
  it('falls back to one pass when the audio ends long before the container does', async () => {
    const dir = await tempDir();
    const source = join(dir, 'short-audio.mp4');
    // 30 s of picture, 8 s of sound: the container declares 30 s, so later stretches find none.
    await promisify(execFile)(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=30:size=160x120:rate=5', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=8:sample_rate=44100', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-f', 'mp4', source]);
    const out = join(dir, 'out.mp3');
    const converted = await mp3Transcoder({ ffmpegPath, quality: 2, timeoutSeconds: 300, coverArt: false, workers: 2, segmentSeconds: 12 })(source, out);
    expect(converted.segments).toBe(1);
    expect(Math.abs(converted.durationSeconds - 8)).toBeLessThan(0.1);
    expect(Math.abs((await decodePcm(out)).samples.length / 2 / 44_100 - 8)).toBeLessThan(0.1);
  });
});

describe('inTurn', () => {
  it('runs every piece of work, never more than `at` at once, starting them in order', async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    await inTurn(7, 3, async (k) => {
      started.push(k);
      most = Math.max(most, ++running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
    });
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(most).toBe(3);
  });

  it('starts nothing more after a failure and rejects with it once the running ones have settled', async () => {
    const settled: number[] = [];
    const started: number[] = [];
    const done = inTurn(6, 2, async (k) => {
      started.push(k);
      await new Promise((resolve) => setImmediate(resolve));
      if (k === 1) throw new Error('piece 1 failed');
      await new Promise((resolve) => setImmediate(resolve));
      settled.push(k);
    });
    await expect(done).rejects.toThrow('piece 1 failed');
    expect(started).toEqual([0, 1]);
    expect(settled).toEqual([0]); // 0 was running when 1 failed: waited for, not abandoned
  });
});
