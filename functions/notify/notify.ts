import type { JobStore } from '../../shared/jobs/store';
import type { Logger } from '../../shared/log';
import { MailRejected, type Email, type Mailer } from './mail/mailer';

export interface NotifyDeps {
  jobs: JobStore;
  mailer: Mailer;
  log: Logger;
  /** A claim older than this is taken to belong to a delivery that died mid-send. */
  claimStaleMs: number;
}

export type Delivery = 'sent' | 'duplicate' | 'rejected' | 'gone' | 'busy';

/**
 * Sends the job's one email. The claim is a conditional update on the job, so redeliveries,
 * even concurrent ones, send nothing more; a transient failure releases it for the retry.
 */
export async function notifyOwner({ jobs, mailer, log, claimStaleMs }: NotifyDeps, email: Email): Promise<Delivery> {
  const claim = await jobs.claimNotification(email.jobId, claimStaleMs);
  if (claim === 'sent') return 'duplicate';
  if (claim === 'busy') return 'busy';
  if (claim === 'missing') return 'gone';

  try {
    await mailer.send(email);
  } catch (err) {
    if (err instanceof MailRejected) {
      // Retrying cannot help; settle the job so no retry is attempted.
      log.error('mail rejected; not retried', { jobId: email.jobId, err });
      await jobs.finishNotification(email.jobId);
      return 'rejected';
    }
    await jobs.releaseNotification(email.jobId);
    throw err;
  }
  await jobs.finishNotification(email.jobId);
  return 'sent';
}
