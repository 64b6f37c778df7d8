import { EventTypes, type AnyEarshotEvent } from '../../shared/events';
import type { Email } from './mail/mailer';

type NotifyEvent = Extract<AnyEarshotEvent, { type: typeof EventTypes.audioConverted | typeof EventTypes.conversionFailed }>;

/** The one email a job gets: the link to its MP3, or why there is none. */
export function composeEmail(event: NotifyEvent, from: string, downloadUrl: URL): Email {
  const { owner, videoId, filename } = event.data;
  if (event.type === EventTypes.audioConverted) {
    const { mp3Id, durationSeconds, sizeBytes } = event.data;
    const link = new URL(`download/${mp3Id}`, downloadUrl.href.endsWith('/') ? downloadUrl : `${downloadUrl.href}/`).href;
    return {
      to: owner.email,
      from,
      jobId: videoId,
      subject: `Your MP3 is ready: ${filename}`,
      text: [
        `Your video is now an MP3: ${filename} (${clock(durationSeconds)}, ${megabytes(sizeBytes)}).`,
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
    to: owner.email,
    from,
    jobId: videoId,
    subject: `We could not convert your video to ${filename.replace(/\.[^.]*$/, '')}.mp3`,
    text: [
      'We could not turn your upload into an MP3.',
      '',
      `Why: ${event.data.reason}`,
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
