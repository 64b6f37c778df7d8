import { mp3Name } from '../../shared/jobs/mp3-name';
import { shownTime, signedPath, type Links } from '../../shared/links';
import { displayText } from '../../shared/text';
import type { Email } from './mail/mailer';
import type { SettledJob } from './match';

/**
 * The one email a job gets: a signed link to its MP3, which opens without a login until it
 * expires, or why there is none. Everything in it is the job's.
 */
export interface EmailSettings {
  from: string;
  /** Where users reach the download function; the email links there. */
  downloadUrl: URL;
  /** Signs the email's link. */
  links: Links;
  /** Whether convert keeps the uploaded video once converted (`KEEP_SOURCE_VIDEOS`): the email says which. */
  keepSourceVideos?: boolean;
}

export async function composeEmail(job: SettledJob, to: string, { from, downloadUrl, links, keepSourceVideos }: EmailSettings, now = new Date()): Promise<Email> {
  // The filename is the uploader's text and goes into the subject: no controls, no bidi tricks.
  const mp3Filename = mp3Name(displayText(job.filename));
  if (job.status === 'converted') {
    const { id: mp3Id, durationSeconds, sizeBytes } = job.mp3;
    const { token, expiresAt } = await links.sign(mp3Id, now);
    const link = `${downloadUrl.href.replace(/\/$/, '')}${signedPath(mp3Id, token)}`;
    return {
      to,
      from,
      jobId: job.id,
      subject: `Your MP3 is ready: ${mp3Filename}`,
      text: [
        `Your video is now an MP3: ${mp3Filename} (${clock(durationSeconds)}, ${megabytes(sizeBytes)}).`,
        '',
        `Download it, no login needed: ${link}`,
        ...kept(expiresAt, job.expiresAt),
        keepSourceVideos ? 'earshot keeps the video you uploaded until you delete the job.' : 'The video you uploaded has been deleted; only the MP3 is kept.',
        '',
        `mp3 file_id: ${mp3Id} is now ready!`,
        '',
        '-- earshot',
      ].join('\n'),
    };
  }
  return {
    to,
    from,
    jobId: job.id,
    subject: `We could not convert your video to ${mp3Filename}`,
    text: [
      'We could not turn your upload into an MP3.',
      '',
      `Why: ${job.failure ?? 'The video could not be converted.'}`,
      '',
      // convert deletes a failed upload's video as it fails (the sweeper, any it could not).
      'The file you uploaded has been deleted; you can upload another at any time.',
      '',
      '-- earshot',
    ].join('\n'),
  };
}

/** The link's end and the MP3's: a link never promised past the MP3's deletion. */
function kept(linkExpiresAt: Date, mp3ExpiresAt: Date | undefined): string[] {
  if (!mp3ExpiresAt) return [`The link works until ${shownTime(linkExpiresAt)}, for anyone who has it. After that, log in to earshot for a fresh one.`];
  if (mp3ExpiresAt <= linkExpiresAt) {
    return [`The link works until ${shownTime(mp3ExpiresAt)}, for anyone who has it: earshot deletes the MP3 then, so download it before.`];
  }
  return [
    `The link works until ${shownTime(linkExpiresAt)}, for anyone who has it. After that, log in to earshot for a fresh one.`,
    `earshot keeps the MP3 until ${shownTime(mp3ExpiresAt)}, then deletes it: download it before then.`,
  ];
}

const clock = (seconds: number) => {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
const megabytes = (bytes: number) => (bytes < 1e6 ? `${Math.max(1, Math.round(bytes / 1e3))} kB` : `${(bytes / 1e6).toFixed(1)} MB`);
