import type { Job, JobStore } from '../../shared/jobs/store';
import { isMediaId } from '../../shared/media/store';

/** The job, if `id` names one of `owner`'s; someone else's is as absent as a missing one. */
export async function ownedJob(jobs: JobStore, id: string, owner: string): Promise<Job | null> {
  const job = isMediaId(id) ? await jobs.get(id) : null;
  return job?.owner === owner ? job : null;
}
