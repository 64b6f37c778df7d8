import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import ffmpeg from 'fluent-ffmpeg';
import { displayText } from '../../shared/text';
import { inputOptions, probeMedia } from './probe';

export interface TranscodeOptions {
  ffmpegPath: string;
  /** LAME VBR quality, 0 (best) to 9 (smallest). */
  quality: number;
  /** Wall-clock budget of one conversion, probe included; also ffmpeg's limit in CPU seconds. */
  timeoutSeconds: number;
  /** Longest audio converted; longer is refused, never cut short. */
  maxDurationSeconds?: number;
  /** Largest MP3 written; reaching it fails the conversion. Default: `outputBound(maxDurationSeconds)`. */
  maxOutputBytes?: number;
}

/** Tags earshot writes into the MP3; nothing of the source's is kept. */
export interface Tags {
  title?: string;
}

/** How far ffmpeg has got into the audio, in percent of its declared duration (0–100). */
export type OnProgress = (percent: number) => void;

/** `onProgress` is called as ffmpeg reports (about twice a second) when the input declares its duration. */
export type Transcode = (input: string, output: string, tags?: Tags, onProgress?: OnProgress) => Promise<{ durationSeconds: number }>;

/** The input cannot become an MP3; `reason` is fit to show the user. */
export class Unconvertible extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'Unconvertible';
  }
}

export const defaultMaxDurationSeconds = 4 * 3600;

/**
 * Bytes an MP3 of `maxDurationSeconds` (+1, see `-t`) can take: no LAME frame is above
 * 320 kbit/s, MPEG-1 Layer III's top rate, at any VBR quality; plus room for the ID3 tag and
 * the Xing frame. So the bound never cuts an MP3 the duration cap allows.
 */
export function outputBound(maxDurationSeconds: number): number {
  return Math.ceil(((maxDurationSeconds + 1) * 320_000) / 8) + 64 * 1024;
}

/**
 * Audio of a local file → VBR MP3 in a local file. The output is a file, not a pipe, so ffmpeg
 * can go back and write the Xing header players need for the right duration; video is
 * never decoded. fluent-ffmpeg builds the arguments; the benchmark runs the same ones by hand.
 */
export function mp3Command(input: string, output: string, options: TranscodeOptions, tags: Tags = {}) {
  const { ffmpegPath, quality, timeoutSeconds } = options;
  const maxSeconds = options.maxDurationSeconds ?? defaultMaxDurationSeconds;
  const title = displayText(tags.title ?? '');
  return ffmpeg({ timeout: timeoutSeconds })
    .setFfmpegPath(ffmpegPath)
    .input(`file:${input}`)
    // Level-prefixed lines: text from the file (tags) cannot pose as ffmpeg's own messages.
    // Spread, not an array: fluent-ffmpeg splits an array's "a b" items in two (a title with a space).
    .inputOptions(...['-loglevel', 'level+info', '-timelimit', cpuSeconds(timeoutSeconds), ...inputOptions])
    .noVideo()
    .outputOptions(...[
      '-map', '0:a:0', '-abort_on', 'empty_output',
      // The header's duration is the file's claim: stop at the cap whatever it said. `-t`
      // counts the file's timestamps, `-fs` the bytes written, which no header can bend.
      '-t', String(maxSeconds + 1), '-fs', String(options.maxOutputBytes ?? outputBound(maxSeconds)),
      // Tags earshot chooses: none of the container's, no chapters, no encoder version.
      '-map_metadata', '-1', '-map_chapters', '-1', '-fflags', '+bitexact',
      ...(title ? ['-metadata', `title=${title}`] : []),
    ])
    .audioCodec('libmp3lame')
    .audioQuality(quality)
    .format('mp3')
    .output(`file:${output}`);
}

export function mp3Transcoder(options: TranscodeOptions): Transcode {
  const { ffmpegPath, timeoutSeconds } = options;
  const maxSeconds = options.maxDurationSeconds ?? defaultMaxDurationSeconds;
  const maxBytes = options.maxOutputBytes ?? outputBound(maxSeconds);
  // Up to half a second over the cap is rounding, not a longer file.
  const tooLong = (seconds: number) => seconds > maxSeconds + 0.5;

  return async (input, output, tags, onProgress) => {
    // fluent-ffmpeg crashes the process on a spawn error instead of reporting it: check first.
    await access(ffmpegPath, constants.X_OK).catch(() => {
      throw new Error(`ffmpeg is not an executable file at ${ffmpegPath}`);
    });
    const deadline = performance.now() + timeoutSeconds * 1000;

    const probe = await probeMedia(ffmpegPath, input, timeoutSeconds);
    if (probe.kind === 'timeout') throw tookTooLong(timeoutSeconds);
    if (probe.kind === 'no-audio') throw new Unconvertible('The video has no audio track.');
    if (probe.kind === 'unreadable') throw fromStderr(probe.stderr, new Error(`ffmpeg could not open the input:\n${probe.stderr.slice(-2000)}`));
    if (probe.durationSeconds !== undefined && tooLong(probe.durationSeconds)) {
      throw new Unconvertible(`The audio is ${clock(Math.ceil(probe.durationSeconds))} long; earshot converts up to ${clock(maxSeconds)}.`);
    }

    const remaining = (deadline - performance.now()) / 1000;
    if (remaining <= 0) throw tookTooLong(timeoutSeconds);
    const declared = probe.durationSeconds;
    const progress = onProgress && declared ? (seconds: number) => onProgress(Math.min(100, (seconds / declared) * 100)) : undefined;
    const stderr = await run(mp3Command(input, output, { ...options, timeoutSeconds: remaining }, tags), timeoutSeconds, progress);
    const size = await stat(output).then((s) => s.size, () => 0);
    if (size === 0) throw new Unconvertible('No audio could be extracted from the video.');
    const durationSeconds = lastTimestamp(stderr);
    // Stopped by -t or -fs: the header understated the audio. Storing the first hours as if they
    // were the whole would lose the rest without a word; the user is told the limit instead.
    if (tooLong(durationSeconds) || size >= maxBytes) {
      throw new Unconvertible(`The audio runs past ${clock(maxSeconds)}; earshot converts up to ${clock(maxSeconds)}.`);
    }
    return { durationSeconds };
  };
}

/**
 * Runs the command; settles only once ffmpeg has exited (killed if need be), with its stderr.
 * `onTime` gets the output time of each of ffmpeg's progress lines. (Not fluent-ffmpeg's
 * 'progress' event: it runs ffprobe on the input, which the npm ffmpeg lacks and which would open
 * the file without our input restrictions, and it misses level-prefixed lines.)
 */
function run(command: ffmpeg.FfmpegCommand, timeoutSeconds: number, onTime?: (seconds: number) => void): Promise<string> {
  if (onTime) {
    command.on('stderr', (line: string) => {
      const seconds = progressSeconds(line);
      if (seconds !== undefined) onTime(seconds);
    });
  }
  return new Promise((resolve, reject) => {
    let proc: ChildProcess | undefined;
    let disarm = () => {};
    const settle = async (done: () => void) => {
      await exited(proc);
      disarm();
      done();
    };
    command
      .on('start', () => {
        proc = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
        if (proc?.pid) disarm = killWhenOrphaned(proc.pid);
      })
      .on('error', (err: Error, _stdout: string | null, stderr: string | null) =>
        settle(() => reject(classify(err, stderr ?? '', timeoutSeconds))),
      )
      .on('end', (_stdout: string | null, stderr: string | null) => settle(() => resolve(stderr ?? '')))
      .run();
  });
}

function exited(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

/**
 * A convert that is SIGKILLed cannot stop its ffmpeg, which would run on for up to its CPU
 * limit. A shell holds the read end of a pipe only this process writes to; the kernel closes
 * it when this process dies, however it dies, and the shell then kills ffmpeg. Disarmed (the
 * shell killed first) as soon as ffmpeg has exited. Without /bin/sh, -timelimit still ends it.
 */
function killWhenOrphaned(pid: number): () => void {
  const watchdog = spawn('/bin/sh', ['-c', 'read -r _; kill -KILL "$1"', 'earshot-ffmpeg-watchdog', String(pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.on('error', () => {});
  watchdog.stdin?.on('error', () => {});
  return () => watchdog.kill('SIGKILL');
}

const tookTooLong = (timeoutSeconds: number) => new Unconvertible(`The video took longer than ${timeoutSeconds} seconds to convert.`);

const cpuSeconds = (timeoutSeconds: number) => String(Math.max(1, Math.ceil(timeoutSeconds)));

function classify(err: Error, stderr: string, timeoutSeconds: number): Error {
  const signal = /^ffmpeg was killed with signal (\w+)/.exec(err.message)?.[1];
  // -timelimit: SIGXCPU, which ffmpeg catches and exits "received signal 24".
  if (/^process ran into a timeout/.test(err.message) || signal === 'SIGXCPU' || /^\[info\] Exiting normally, received signal 24\b/m.test(stderr)) {
    return tookTooLong(timeoutSeconds);
  }
  if (signal || !/^ffmpeg exited with code/.test(err.message)) return err; // not started, or killed by others (OOM): ours
  return fromStderr(stderr, err);
}

/** Why ffmpeg failed, from what it logged at warning level or worse (never tag text). */
function fromStderr(stderr: string, ours: Error): Error {
  const text = stderr
    .split(/\r|\n/)
    .filter((line) => /^(?:\[[^\]]* @ 0x[0-9a-f]+\] )?\[(?:warning|error|fatal|panic)\] /.test(line))
    .join('\n');
  if (/No space left|Cannot allocate memory/i.test(text)) return ours; // ours, not the file's
  if (/matches no streams|does not contain any stream/.test(text)) return new Unconvertible('The video has no audio track.');
  if (/empty output|Output file is empty/i.test(text)) return new Unconvertible('No audio could be extracted from the video.');
  return new Unconvertible('The file could not be read as a video; it may be damaged or in an unsupported format.');
}

/**
 * The output time of one of ffmpeg's own progress lines (`[info] size=  139kB time=00:00:30.01 …`,
 * the same in the npm 2018 build, 5.1 and 7), else undefined. Only a line that starts with the
 * level prefix counts: a tag's text, dumped before encoding starts, cannot pose as one.
 */
export function progressSeconds(line: string): number | undefined {
  const match = /^\[info\] (?:frame=.*)?size=\s*\S+ time=(\d+):(\d{2}):(\d{2}(?:\.\d+)?) /.exec(line);
  if (!match) return undefined;
  return Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3]);
}

/** ffmpeg's last progress line gives the output's length (lines split as fluent-ffmpeg splits them). */
function lastTimestamp(stderr: string): number {
  return stderr.split(/\r\n|\r|\n/).map(progressSeconds).filter((s) => s !== undefined).at(-1) ?? 0;
}

/** 14400 → "4:00:00". */
export function clock(seconds: number): string {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}
