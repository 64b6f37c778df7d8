import type { MediaStore } from '../media/store';
import type { Job, JobStore } from './store';

/** Whether a converted job's MP3 is past its keeping: deleted already, or due to be. */
export const hasExpired = (job: Job, now = new Date()): boolean =>
  job.expired === true || (job.status === 'converted' && job.expiresAt !== undefined && job.expiresAt <= now);

/**
 * Removes a job and everything stored for it: its MP3, its video, then the job itself, so that
 * an interrupted removal leaves a job that names what is left and can be removed again.
 */
export async function removeJob(media: MediaStore, jobs: JobStore, job: Job): Promise<void> {
  await media.delete('mp3s', job.mp3?.id ?? job.id);
  await media.delete('videos', job.id);
  await jobs.delete(job.id);
}

/** Deletes an expired MP3 and records on its job that it expired. Repeating it is harmless. */
export async function expireMp3(media: MediaStore, jobs: JobStore, job: Job): Promise<void> {
  if (job.mp3) await media.delete('mp3s', job.mp3.id);
  await jobs.markExpired(job.id);
}
