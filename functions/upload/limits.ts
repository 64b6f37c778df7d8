import type { JobStore } from '../../shared/jobs/store';
import type { Logger } from '../../shared/log';
import { Problem } from '../../shared/problem';

export interface UploadLimits {
  /** Uploads a user may have waiting for or in conversion (`uploaded` or `converting`). */
  inFlight: number;
  /** Uploads a user may make in any 24 hours. */
  perDay: number;
}

const dayMs = 24 * 60 * 60 * 1000;
/** No one knows when a conversion will end; most take seconds, the longest minutes. */
const inFlightRetrySeconds = 30;

/** Gives up a place held by `admit`. */
export type Release = () => void;

/**
 * Per-user upload limits, checked before the body is read, so a refused upload costs one count.
 * The counts come from the job store, which every pod shares. In-flight jobs are counted within
 * the same rolling day, so a job the pipeline lost (stuck in `uploaded`) holds a place for a
 * day at most, not forever.
 *
 * Between the count and the job's record an upload streams for a while, and is in no store:
 * this pod's uploads in progress are added to the count, so parallel requests to one pod cannot
 * all pass the same count. Across pods that window remains; the limits are a bound on abuse,
 * not an exact quota.
 */
export function uploadLimiter(jobs: JobStore, limits: UploadLimits, log: Logger, now: () => number = Date.now) {
  const receiving = new Map<string, number>();

  return {
    /** Holds a place for one upload by `userId`, or throws a 429 problem with `Retry-After`. */
    async admit(userId: string): Promise<Release> {
      const at = now();
      const counts = await jobs.countUploads(userId, new Date(at - dayMs));
      // Synchronous from here to the increment: no other request of this pod slips between.
      const here = receiving.get(userId) ?? 0;
      const [today, inFlight] = [counts.total + here, counts.inFlight + here];
      if (today >= limits.perDay) {
        // A place frees when the oldest upload of the window leaves it.
        const wait = counts.oldest ? Math.ceil((counts.oldest.getTime() + dayMs - at) / 1000) : inFlightRetrySeconds;
        const detail = `You have made ${today} uploads in the last 24 hours; the limit is ${limits.perDay}.`;
        throw refuse(log, userId, { limit: 'MAX_UPLOADS_PER_DAY', count: today, max: limits.perDay, retryAfterSeconds: Math.max(1, wait) }, detail);
      }
      if (inFlight >= limits.inFlight) {
        const detail = `You have ${inFlight} uploads waiting for or in conversion; the limit is ${limits.inFlight}. Upload again when one is done.`;
        throw refuse(log, userId, { limit: 'MAX_UPLOADS_IN_FLIGHT', count: inFlight, max: limits.inFlight, retryAfterSeconds: inFlightRetrySeconds }, detail);
      }
      receiving.set(userId, here + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (receiving.get(userId) ?? 1) - 1;
        if (left > 0) receiving.set(userId, left);
        else receiving.delete(userId);
      };
    },
  };
}

function refuse(log: Logger, userId: string, fields: { limit: string; count: number; max: number; retryAfterSeconds: number }, detail: string): Problem {
  log.warn('upload limit reached', { userId, ...fields });
  return new Problem({
    status: 429,
    title: 'Too Many Requests',
    detail: `${detail} Nothing was stored.`,
    headers: { 'retry-after': String(fields.retryAfterSeconds) },
  });
}
