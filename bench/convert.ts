/** B1: the convert function on a stored video, until its reply, against the bare ffmpeg command. */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createApp } from '../functions/convert/app';
import { probeMedia } from '../functions/convert/probe';
import { coverCommand, mp3Command, mp3Plan, mp3Transcoder } from '../functions/convert/transcode';
import { EventTypes, makeEvent, toHttp } from '../shared/events';
import { createLogger } from '../shared/log';
import { openStores, type Stores } from '../shared/stores';
import { benchVideo } from './inputs';
import { interleaved, time, type Row } from './measure';

const run = promisify(execFile);

export async function benchConvert({ seconds, runs, ffmpegPath, label }: { seconds: number; runs: number; ffmpegPath: string; label: string }): Promise<Row> {
  const video = await benchVideo(seconds);
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-convert-'));
  try {
    const stores = await openStores(pathToFileURL(join(dir, 'store')));
    const options = { ffmpegPath, quality: 2, timeoutSeconds: 3600 };
    // Errors only: a failed conversion says why.
    const app = createApp({ ...stores, transcode: mp3Transcoder(options), leaseMs: 60_000, log: createLogger({}, { level: 'error' }) });

    // The same plan convert makes for this upload (tags, cover), probed once outside the timing:
    // the baseline is the ffmpeg commands convert runs (the encode, then the cover), so the ratio
    // is convert's own overhead.
    const probe = await probeMedia(ffmpegPath, video, options.timeoutSeconds);
    if (probe.kind !== 'audio') throw new Error(`the bench video cannot be converted: ${probe.kind}`);
    const plan = mp3Plan(probe, { title: 'pink' }, options);
    const byHand = async (command: ReturnType<typeof mp3Command>) =>
      run(ffmpegPath, (command as unknown as { _getArguments(): string[] })._getArguments().map(String), { maxBuffer: 64 * 1024 * 1024 });
    const baseline = () =>
      time(async () => {
        const audio = join(dir, `${randomUUID()}.mp3`);
        await byHand(mp3Command(video, audio, options, plan));
        if (plan.coverAt !== undefined) {
          const out = join(dir, `${randomUUID()}.mp3`);
          await byHand(coverCommand(audio, video, out, options, plan.coverAt));
          await rm(out);
        }
        await rm(audio);
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
      measure: `convert ${seconds / 60 >= 1 ? `${seconds / 60}-min` : `${seconds}-s`} MP4, ${label}`,
      value: m.subject / 1000,
      unit: 's',
      baseline: { name: 'ffmpeg command', value: m.baseline / 1000 },
      ratio,
      target: '≤ 1.05×',
      met: ratio <= 1.05,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A new upload of `video`, stored as upload stores it, and the event that asks convert for it: so that convert does the whole job. */
export async function storedUpload(stores: Stores, video: string): Promise<{ headers: Record<string, string>; body: string }> {
  const videoId = randomUUID();
  await stores.media.put('videos', videoId, { owner: 'bench', filename: 'pink.mp4', contentType: 'video/mp4' }, createReadStream(video));
  await stores.jobs.create({ id: videoId, owner: 'bench', filename: 'pink.mp4' });
  const event = makeEvent(EventTypes.videoUploaded, '/bench', videoId, { videoId, owner: { id: 'bench', email: 'bench@example.com' }, filename: 'pink.mp4', contentType: 'video/mp4', sizeBytes: 1 });
  const { headers, body } = toHttp(event);
  return { headers: headers as Record<string, string>, body: body as string };
}

/** Convert's reply, if it is the MP3's event; else what it said, as an error. */
export async function converted(res: Response): Promise<void> {
  if (res.headers.get('ce-type') !== EventTypes.audioConverted) throw new Error(`convert answered ${res.status} ${await res.text()}`);
}
