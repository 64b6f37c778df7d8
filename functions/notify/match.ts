import { EventTypes, type AnyEarshotEvent } from '../../shared/events';
import type { Job, Mp3Result } from '../../shared/jobs/store';

export type NotifyEvent = Extract<AnyEarshotEvent, { type: typeof EventTypes.audioConverted | typeof EventTypes.conversionFailed }>;

/** A job at its end, which is the only kind that gets its email. */
export type SettledJob = Job & ({ status: 'converted'; mp3: Mp3Result } | { status: 'failed' });

/**
 * The job an event names, if its stored state is what the event claims; otherwise why not.
 * Only the event's ids are read: anything in the cluster can post to the broker, so a forged
 * or stale event may at most cause this lookup.
 */
export function settledJobFor(event: NotifyEvent, job: Job | null): { job: SettledJob } | { mismatch: string } {
  if (!job) return { mismatch: 'no such job' };
  if (event.type === EventTypes.audioConverted) {
    if (job.status !== 'converted' || !job.mp3) return { mismatch: `the job is ${job.status}` };
    if (job.mp3.id !== event.data.mp3Id) return { mismatch: 'the job has another MP3' };
    return { job: job as SettledJob };
  }
  if (job.status !== 'failed') return { mismatch: `the job is ${job.status}` };
  return { job: job as SettledJob };
}
