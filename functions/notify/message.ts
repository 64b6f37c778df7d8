import { mp3Name } from '../../shared/jobs/mp3-name';
import { displayText } from '../../shared/text';
import type { Email } from './mail/mailer';
import type { SettledJob } from './match';

/** The one email a job gets: the link to its MP3, or why there is none. Everything in it is the job's. */
export function composeEmail(job: SettledJob, to: string, from: string, downloadUrl: URL): Email {
  // The filename is the uploader's text and goes into the subject: no controls, no bidi tricks.
  const mp3Filename = mp3Name(displayText(job.filename));
  if (job.status === 'converted') {
    const { id: mp3Id, durationSeconds, sizeBytes } = job.mp3;
    const link = new URL(`download/${mp3Id}`, downloadUrl.href.endsWith('/') ? downloadUrl : `${downloadUrl.href}/`).href;
    return {
      to,
      from,
      jobId: job.id,
      subject: `Your MP3 is ready: ${mp3Filename}`,
      text: [
        `Your video is now an MP3: ${mp3Filename} (${clock(durationSeconds)}, ${megabytes(sizeBytes)}).`,
        '',
        `Download it (log in first): ${link}`,
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
      'Nothing of it is kept for conversion; you can upload another file at any time.',
      '',
      '-- earshot',
    ].join('\n'),
  };
}

const clock = (seconds: number) => {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
const megabytes = (bytes: number) => (bytes < 1e6 ? `${Math.max(1, Math.round(bytes / 1e3))} kB` : `${(bytes / 1e6).toFixed(1)} MB`);
