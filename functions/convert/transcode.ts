import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import ffmpeg from 'fluent-ffmpeg';

export interface TranscodeOptions {
  ffmpegPath: string;
  /** LAME VBR quality, 0 (best) to 9 (smallest). */
  quality: number;
  timeoutSeconds: number;
}

export type Transcode = (input: string, output: string) => Promise<{ durationSeconds: number }>;

/** The input cannot become an MP3; `reason` is fit to show the user. */
export class Unconvertible extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'Unconvertible';
  }
}

/** Demuxers ffmpeg may use: media containers only, none that open other files or URLs (HLS, concat). */
const demuxers = 'mov,mp4,m4a,3gp,matroska,webm,avi,flv,mpegts,mpeg,ogg,asf,wav,w64,mp3,aac,flac,rm,aiff,amr,caf';

/**
 * Audio of a local file → VBR MP3 in a local file. The output is a file, not a pipe, so ffmpeg
 * can go back and write the Xing header players need for the right duration; video is
 * never decoded.
 */
/** The ffmpeg command (fluent-ffmpeg builds its arguments; the benchmark runs the same ones by hand). */
export function mp3Command(input: string, output: string, { ffmpegPath, quality, timeoutSeconds }: TranscodeOptions) {
  return ffmpeg({ timeout: timeoutSeconds })
    .setFfmpegPath(ffmpegPath)
    .input(`file:${input}`)
    .inputOptions(['-protocol_whitelist', 'file', '-format_whitelist', demuxers])
    .noVideo()
    .outputOptions(['-map', '0:a:0', '-abort_on', 'empty_output'])
    .audioCodec('libmp3lame')
    .audioQuality(quality)
    .format('mp3')
    .output(`file:${output}`);
}

export function mp3Transcoder(options: TranscodeOptions): Transcode {
  const { ffmpegPath, timeoutSeconds } = options;
  return async (input, output) => {
    // fluent-ffmpeg crashes the process on a spawn error instead of reporting it: check first.
    await access(ffmpegPath, constants.X_OK).catch(() => {
      throw new Error(`ffmpeg is not an executable file at ${ffmpegPath}`);
    });
    return new Promise((resolve, reject) => {
      mp3Command(input, output, options)
        .on('error', (err: Error, _stdout: string | null, stderr: string | null) => reject(classify(err, stderr ?? '', timeoutSeconds)))
        .on('end', async (_stdout: string | null, stderr: string | null) => {
          const size = await stat(output).then((s) => s.size, () => 0);
          if (size === 0) return reject(new Unconvertible('No audio could be extracted from the video.'));
          resolve({ durationSeconds: lastTimestamp(stderr ?? '') });
        })
        .run();
    });
  };
}

function classify(err: Error, stderr: string, timeoutSeconds: number): Error {
  const text = `${err.message}\n${stderr}`;
  if (/ran into a timeout/.test(err.message)) {
    return new Unconvertible(`The video took longer than ${timeoutSeconds} seconds to convert.`);
  }
  if (/ENOENT|No space left|Cannot allocate memory|killed with signal/i.test(text)) return err; // ours, not the file's
  if (/matches no streams|does not contain any stream/.test(text)) return new Unconvertible('The video has no audio track.');
  if (/empty output|Output file is empty/i.test(text)) return new Unconvertible('No audio could be extracted from the video.');
  return new Unconvertible('The file could not be read as a video; it may be damaged or in an unsupported format.');
}

/** ffmpeg's last progress line gives the output's length: `time=00:01:02.35`. */
function lastTimestamp(stderr: string): number {
  const match = [...stderr.matchAll(/time=\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)/g)].at(-1);
  if (!match) return 0;
  return Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3]);
}
