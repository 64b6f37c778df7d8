import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, parse } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { EventTypes, makeEvent, type EarshotEvent, type EventData } from '../../shared/events';
import { mp3Name } from '../../shared/jobs/mp3-name';
import type { Job, JobStore, Mp3Result } from '../../shared/jobs/store';
import type { Logger } from '../../shared/log';
import { MediaExists, type MediaStore } from '../../shared/media/store';
import { progressReporter } from './progress';
import { tempPrefix } from './sweep';
import { Unconvertible, type Transcode } from './transcode';

export interface ConvertDeps {
  media: MediaStore;
  jobs: JobStore;
  transcode: Transcode;
  /** How long a conversion holds its job without renewing; after that a redelivery may take it over. */
  leaseMs: number;
  /** How long an MP3 is kept once converted; it expires then (see functions/sweeper). 30 days when not given. */
  retentionMs?: number;
  /** Keep the uploaded video once its MP3 is stored (by default it is deleted then). */
  keepSourceVideos?: boolean;
  log: Logger;
}

export type Outcome =
  | { kind: 'reply'; event: EarshotEvent }
  /** Another delivery is converting this video right now: retry later. */
  | { kind: 'busy' }
  /** No such upload (it was withdrawn): nothing to do, nobody to tell. */
  | { kind: 'gone' };

const defaultRetentionMs = 30 * 24 * 3600 * 1000;
type Uploaded = EventData<typeof EventTypes.videoUploaded>;
const source = '/earshot/convert';

/**
 * Idempotent by video id: a converted or failed video gets the same reply again, without work.
 * The event only names the job; the reply's owner, address and filename are the job's.
 */
export async function convertVideo(deps: ConvertDeps, data: Uploaded): Promise<Outcome> {
  const { jobs, leaseMs } = deps;
  const job = await jobs.get(data.videoId);
  if (!job || job.owner !== data.owner.id) return { kind: 'gone' };
  const settled = settledReply(job);
  if (settled) {
    // The delivery that settled it may have died before its video was deleted.
    await dropSourceVideo(deps, job);
    return settled;
  }

  const conversion = await jobs.startConversion(job.id, leaseMs);
  if (!conversion) {
    const now = await jobs.get(job.id);
    return (now && settledReply(now)) || (now ? { kind: 'busy' } : { kind: 'gone' });
  }

  // Renewed while we work: if this process dies, the lease lapses and a redelivery takes over.
  const heartbeat = setInterval(() => {
    jobs.extendConversion(job.id, leaseMs).catch((err: unknown) => deps.log.warn('lease not renewed', { videoId: job.id, err }));
  }, leaseMs / 3);
  try {
    const mp3 = await convertAndStore(deps, job, conversion);
    await jobs.finishConversion(job.id, mp3, new Date(Date.now() + (deps.retentionMs ?? defaultRetentionMs)));
    await dropSourceVideo(deps, { ...job, status: 'converted' });
    return reply(converted(job, mp3));
  } catch (err) {
    if (!(err instanceof Unconvertible)) {
      await jobs.releaseConversion(job.id);
      throw err;
    }
    await jobs.failConversion(job.id, err.reason);
    await dropSourceVideo(deps, { ...job, status: 'failed' });
    return reply(failed(job, err.reason));
  } finally {
    clearInterval(heartbeat);
  }
}

async function convertAndStore({ media, jobs, transcode, log }: ConvertDeps, job: Job, conversion: string): Promise<Mp3Result> {
  const video = await media.stat('videos', job.id);
  if (!video) throw new Unconvertible('The uploaded video is no longer stored.');
  const dir = await mkdtemp(join(tmpdir(), tempPrefix));
  try {
    // ffmpeg needs to seek: an MP4 with its index at the end cannot be read from a pipe.
    const input = join(dir, 'input');
    const output = join(dir, 'output.mp3');
    await pipeline(await media.read('videos', video.id), createWriteStream(input));
    const started = performance.now();
    const progress = progressReporter((percent) => jobs.reportProgress(video.id, conversion, percent), {
      onError: (err) => log.warn('progress not recorded', { videoId: video.id, err }),
    });
    // The title comes from the stored name and the options from the job, as upload checked them: not the event's.
    const wanted = { title: parse(video.filename).name, ...(job.options && { options: job.options }) };
    const { durationSeconds, audioTrack, segments } = await transcode(input, output, wanted, progress.report).finally(progress.settled);
    const sizeBytes = (await stat(output)).size;
    log.info('converted', { videoId: video.id, durationSeconds, sizeBytes, audioTrack, segments, ms: Math.round(performance.now() - started) });

    const filename = mp3Name(video.filename);
    // The MP3 takes the video's id: "does an MP3 exist for this video" is one lookup.
    const meta = { owner: video.owner, filename, contentType: 'audio/mpeg', sourceVideoId: video.id };
    try {
      await media.put('mp3s', video.id, meta, createReadStream(output));
    } catch (err) {
      if (!(err instanceof MediaExists)) throw err; // an earlier attempt stored it whole
    }
    return { id: video.id, durationSeconds, sizeBytes, audioTrack };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Deletes a settled job's uploaded video: a converted one's unless kept by choice, a failed one's
 * always (it cannot be converted). Best effort: the reply goes out whatever happens here, and
 * the sweeper removes what is left; deleting twice is no error.
 */
async function dropSourceVideo({ media, keepSourceVideos, log }: ConvertDeps, job: Job): Promise<void> {
  if (job.status === 'converted' && keepSourceVideos) return;
  if (job.status !== 'converted' && job.status !== 'failed') return;
  await media.delete('videos', job.id).catch((err: unknown) => log.warn('uploaded video not deleted; the sweeper will', { videoId: job.id, err }));
}

function settledReply(job: Job): Outcome | undefined {
  if (job.status === 'converted' && job.mp3) return reply(converted(job, job.mp3));
  if (job.status === 'failed') return reply(failed(job, job.failure ?? 'The video could not be converted.'));
  return undefined;
}

const ownerOf = (job: Job) => ({ id: job.owner, ...(job.ownerEmail && { email: job.ownerEmail }) });

const converted = (job: Job, mp3: Mp3Result) =>
  makeEvent(EventTypes.audioConverted, source, job.id, {
    videoId: job.id,
    mp3Id: mp3.id,
    owner: ownerOf(job),
    filename: mp3Name(job.filename),
    durationSeconds: mp3.durationSeconds,
    sizeBytes: mp3.sizeBytes,
  });

const failed = (job: Job, reason: string) =>
  makeEvent(EventTypes.conversionFailed, source, job.id, { videoId: job.id, owner: ownerOf(job), filename: job.filename, reason });

const reply = (event: EarshotEvent): Outcome => ({ kind: 'reply', event });
