/** uploaded → converting → converted | failed */
export type JobStatus = 'uploaded' | 'converting' | 'converted' | 'failed';

export interface Mp3Result {
  id: string;
  durationSeconds: number;
  sizeBytes: number;
}

export interface Job {
  id: string;
  owner: string;
  filename: string;
  status: JobStatus;
  createdAt: Date;
  updatedAt: Date;
  mp3?: Mp3Result;
  /** Why the conversion failed, in words fit for the user. */
  failure?: string;
}

export type NotificationClaim = 'claimed' | 'sent' | 'busy' | 'missing';

/**
 * Job records. Every transition is a conditional update, so two deliveries of one event
 * can never both convert, nor both send the email.
 */
export interface JobStore {
  create(job: { id: string; owner: string; filename: string }): Promise<Job>;
  get(id: string): Promise<Job | null>;
  delete(id: string): Promise<void>;

  /** uploaded → converting, or takes over a conversion whose lease ran out. False if not. */
  startConversion(id: string, leaseMs: number): Promise<boolean>;
  /** Keeps the lease of a conversion in progress alive, so that only a dead one can be taken over. */
  extendConversion(id: string, leaseMs: number): Promise<void>;
  finishConversion(id: string, mp3: Mp3Result): Promise<void>;
  failConversion(id: string, reason: string): Promise<void>;
  /** converting → uploaded, after a transient error, so the retry need not wait for the lease. */
  releaseConversion(id: string): Promise<void>;

  /** Takes the right to send the job's one email; a claim older than `staleMs` is taken over. */
  claimNotification(id: string, staleMs: number): Promise<NotificationClaim>;
  finishNotification(id: string): Promise<void>;
  releaseNotification(id: string): Promise<void>;

  close(): Promise<void>;
}
