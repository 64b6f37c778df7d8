/** What the download function says of a job, as the page reads it. */

/** What the uploader asked of the conversion (shared/convert-options.ts), as the job view has it. */
export interface ConvertOptions {
  quality?: number;
  bitrate?: number;
  channels?: 'mono' | 'stereo';
  start?: number;
  end?: number;
  track?: number;
  loudness?: number;
  cover?: boolean;
}

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
