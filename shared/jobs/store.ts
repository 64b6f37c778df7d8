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
  /**
   * The owner's address as their verified token gave it at upload: the only address the job's
   * email may go to. Absent on jobs recorded before it was kept; those get no email.
   */
  ownerEmail?: string;
  filename: string;
  status: JobStatus;
  createdAt: Date;
  updatedAt: Date;
  mp3?: Mp3Result;
  /** Why the conversion failed, in words fit for the user. */
  failure?: string;
}

export type NotificationClaim = 'claimed' | 'sent' | 'busy' | 'missing';

export interface NewJob {
  id: string;
  owner: string;
  /** Upload always gives it; without one the job is converted but nobody is mailed. */
  ownerEmail?: string;
  filename: string;
}

/** One owner's jobs created since a given time: what per-user upload limits are checked against. */
export interface UploadCounts {
  total: number;
  /** Of those, the ones still `uploaded` or `converting`. */
  inFlight: number;
  /** When the oldest of them was created; null when there are none. */
  oldest: Date | null;
}

/**
 * Job records. Every transition is a conditional update, so two deliveries of one event
 * can never both convert, nor both send the email.
 */
export interface JobStore {
  create(job: NewJob): Promise<Job>;
  get(id: string): Promise<Job | null>;
  delete(id: string): Promise<void>;
  /** Counts the owner's jobs created at or after `since`. */
  countUploads(owner: string, since: Date): Promise<UploadCounts>;

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
