import type { ConvertOptions } from '../convert-options';

/** uploaded → converting → converted | failed; a retry goes converting → uploaded → converting. */
export type JobStatus = 'uploaded' | 'converting' | 'converted' | 'failed';

/** A status the job entered, with the revision that change made it. */
export interface Transition {
  status: JobStatus;
  revision: number;
  at: Date;
}

/** How far the current conversion has got, with the revision that report made the job. */
export interface Progress {
  percent: number;
  revision: number;
}

/** Where a page of an owner's jobs ended: the next page starts after it. */
export interface JobPosition {
  createdAt: Date;
  id: string;
}

export interface Mp3Result {
  id: string;
  durationSeconds: number;
  sizeBytes: number;
  /** The source's audio track that was converted, counted from 1; absent on jobs converted before it was kept. */
  audioTrack?: number;
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
  /** What the uploader asked of the conversion; absent when nothing was asked. */
  options?: ConvertOptions;
  status: JobStatus;
  createdAt: Date;
  updatedAt: Date;
  mp3?: Mp3Result;
  /** Why the conversion failed, in words fit for the user. */
  failure?: string;
  /** When the MP3 is deleted: set as it is converted, absent on jobs converted before MP3s expired. */
  expiresAt?: Date;
  /** The MP3 passed `expiresAt` and was deleted; `mp3` stays, as the record of what there was. */
  expired?: true;
  /**
   * Counts the changes a watcher can see: 1 when created (uploaded), one more for each status
   * transition and each progress report, never anything else (leases, the email). So a watcher
   * that has seen revision n has missed exactly the changes numbered above n.
   */
  revision: number;
  /**
   * Every status the job has entered, oldest first, from `uploaded` at revision 1. A conversion
   * that takes over one whose lease lapsed enters `converting` again: its progress starts over.
   */
  transitions: Transition[];
  /** The latest progress of the conversion in hand; only while converting, and never lower than before. */
  progress?: Progress;
}

export type NotificationClaim = 'claimed' | 'sent' | 'busy' | 'missing';

export interface NewJob {
  id: string;
  owner: string;
  /** Upload always gives it; without one the job is converted but nobody is mailed. */
  ownerEmail?: string;
  filename: string;
  /** Only when something was asked. */
  options?: ConvertOptions;
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
  /** Up to `limit` of the owner's jobs, newest first (by creation, then id), after `after` when given. */
  listByOwner(owner: string, limit: number, after?: JobPosition): Promise<Job[]>;

  /**
   * uploaded → converting, or takes over a conversion whose lease ran out. The conversion's
   * token (what `reportProgress` is allowed by), or null if not.
   */
  startConversion(id: string, leaseMs: number): Promise<string | null>;
  /**
   * Records how far the conversion holding `conversion` has got, in percent. Ignored unless the
   * job is converting under that token and `percent` is above the last one recorded.
   */
  reportProgress(id: string, conversion: string, percent: number): Promise<void>;
  /** Keeps the lease of a conversion in progress alive, so that only a dead one can be taken over. */
  extendConversion(id: string, leaseMs: number): Promise<void>;
  /** converting → converted; the MP3 is kept until `expiresAt` (forever without one). */
  finishConversion(id: string, mp3: Mp3Result, expiresAt?: Date): Promise<void>;
  failConversion(id: string, reason: string): Promise<void>;
  /** converting → uploaded, after a transient error, so the retry need not wait for the lease. */
  releaseConversion(id: string): Promise<void>;

  /** Takes the right to send the job's one email; a claim older than `staleMs` is taken over. */
  claimNotification(id: string, staleMs: number): Promise<NotificationClaim>;
  finishNotification(id: string): Promise<void>;
  releaseNotification(id: string): Promise<void>;

  /** Up to `limit` converted jobs whose MP3 expired at or before `now` and is not yet marked expired. */
  listExpiring(now: Date, limit: number): Promise<Job[]>;
  /** Records that the job's MP3 expired and was deleted. */
  markExpired(id: string): Promise<void>;
  /** Up to `limit` jobs still `uploaded` (no conversion started or pending) since before `before`. */
  listAbandoned(before: Date, limit: number): Promise<Job[]>;

  close(): Promise<void>;
}
