// A type only, erased from the bundle: the page carries none of upload's parsing.
import type { ConvertOptions } from '../../../shared/convert-options';

/** What the download function says of a job, as the page reads it. */
export interface JobView {
  id: string;
  status: 'uploaded' | 'converting' | 'converted' | 'failed';
  filename: string;
  createdAt: string;
  progress?: { percent: number };
  options?: ConvertOptions;
  mp3?: { durationSeconds: number; sizeBytes: number; audioTrack?: number };
  /** When the MP3 is (or was) deleted. */
  expiresAt?: string;
  /** The MP3 was deleted: there is nothing to play or download. */
  expired?: boolean;
  /** The owner's signed link: opens in any browser without a token. */
  signedUrl?: string;
  error?: string;
}

export type { ConvertOptions };
