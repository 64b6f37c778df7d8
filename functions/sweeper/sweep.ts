import { expireMp3, removeJob } from '../../shared/jobs/retention';
import type { Job, JobStore } from '../../shared/jobs/store';
import type { Logger } from '../../shared/log';
import type { Bucket, MediaInfo, MediaStore } from '../../shared/media/store';

export interface SweepDeps {
  media: MediaStore;
  jobs: JobStore;
  log: Logger;
  /** Converted jobs keep their uploaded video (KEEP_SOURCE_VIDEOS); failed ones never do. */
  keepSourceVideos: boolean;
  /**
   * How long an upload may wait for its conversion, and a stored item for its job, before it is
   * taken for abandoned: longer than the broker's retries, and than an upload takes to finish.
   */
  abandonedAfterMs: number;
  /** Items read per store query. */
  batch?: number;
}

/** What one sweep removed. */
export interface SweepReport {
  /** MP3s past their keeping, deleted; their jobs say so. */
  expiredMp3s: number;
  /** Jobs that waited too long for a conversion, removed with their video. */
  abandonedJobs: number;
  /** Videos whose job no longer needs them (converted, failed) or has gone. */
  videos: number;
  /** MP3s without a job (removed while converting), or left over from an expiry cut short. */
  mp3s: number;
}

/** Enough for one run a quarter of an hour apart; anything left is taken by the next. */
const maxBatches = 100;

/**
 * One pass over the stores: expire due MP3s, remove abandoned uploads, then remove what no job
 * needs. Every step reads the store's state again and deleting twice is no error, so sweeps may
 * overlap, or be cut short and run again.
 */
export async function sweep(deps: SweepDeps, now = new Date()): Promise<SweepReport> {
  const { media, jobs, log, batch = 100 } = deps;
  const stale = new Date(now.getTime() - deps.abandonedAfterMs);
  const report: SweepReport = { expiredMp3s: 0, abandonedJobs: 0, videos: 0, mp3s: 0 };

  report.expiredMp3s = await drain(
    () => jobs.listExpiring(now, batch),
    async (job) => {
      await expireMp3(media, jobs, job);
      log.info('mp3 expired', { videoId: job.id, expiresAt: job.expiresAt?.toISOString() });
    },
  );
  report.abandonedJobs = await drain(
    () => jobs.listAbandoned(stale, batch),
    async (job) => {
      await removeJob(media, jobs, job);
      log.info('abandoned upload removed', { videoId: job.id, since: job.updatedAt.toISOString() });
    },
  );
  report.videos = await walk(media, 'videos', stale, batch, async (video) => {
    const job = await jobs.get(video.id);
    return !job || job.status === 'failed' || (job.status === 'converted' && !deps.keepSourceVideos);
  });
  report.mp3s = await walk(media, 'mp3s', stale, batch, async (mp3) => {
    const job = await jobs.get(mp3.sourceVideoId ?? mp3.id);
    return !job || job.expired === true;
  });
  if (report.videos + report.mp3s > 0) log.info('unneeded media removed', { videos: report.videos, mp3s: report.mp3s });
  return report;
}

/** Takes pages of jobs until none is left: each one handled leaves the list. */
async function drain(page: () => Promise<Job[]>, handle: (job: Job) => Promise<void>): Promise<number> {
  let count = 0;
  for (let round = 0; round < maxBatches; round++) {
    const jobs = await page();
    for (const job of jobs) await handle(job);
    count += jobs.length;
    if (jobs.length === 0) break;
  }
  return count;
}

/** Deletes every item of `bucket` stored before `before` that `unneeded` says no job wants. */
async function walk(media: MediaStore, bucket: Bucket, before: Date, batch: number, unneeded: (item: MediaInfo) => Promise<boolean>): Promise<number> {
  let removed = 0;
  let after: string | undefined;
  for (let round = 0; round < maxBatches; round++) {
    const items = await media.list(bucket, { before, ...(after !== undefined && { after }), limit: batch });
    for (const item of items) {
      if (!(await unneeded(item))) continue;
      await media.delete(bucket, item.id);
      removed++;
    }
    if (items.length < batch) break;
    after = items.at(-1)!.id;
  }
  return removed;
}
