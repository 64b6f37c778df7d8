import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, rename, rm, stat } from 'node:fs/promises';
import ffmpeg from 'fluent-ffmpeg';
import { displayText } from '../../shared/text';
import type { ConvertOptions } from '../../shared/convert-options';
import { joinMp3, NotJoinable } from './mp3-join';
import { inputOptions, probeMedia, type InputDump } from './probe';
import { inTurn, stretches } from './segments';

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
  /** A frame of the video as the MP3's cover picture (default true). */
  coverArt?: boolean;
  /** Shortest stretch of audio encoded on its own: audio twice as long or more is split (see segments.ts). Default 60. */
  segmentSeconds?: number;
  /** ffmpeg encodes one conversion may run at once (default 1: one pass). */
  workers?: number;
}

/** What one conversion is asked for: the title (the stored file's name) and the uploader's options. */
export interface Wanted {
  /** Used when the source has no title tag of its own. */
  title?: string;
  options?: ConvertOptions;
}

/** Tags earshot writes into the MP3, cleaned; nothing else of the source's is kept. */
export interface Tags {
  title?: string;
  artist?: string;
  album?: string;
  date?: string;
  comment?: string;
}

/** Everything decided for one conversion, from the probe and what was wanted: what `mp3Command` turns into arguments. */
export interface Mp3Plan {
  tags?: Tags;
  /** Audio stream to convert, counted from 0 among the audio streams (`0:a:N`). */
  audioStream?: number;
  /** Channels to write when the source's must change: 1, or 2 for a source with more. */
  downmixTo?: 1 | 2;
  /** Seconds into the input to take the cover picture from; no cover when absent. */
  coverAt?: number;
  start?: number;
  /** Seconds of audio to keep from `start`. */
  length?: number;
  bitrate?: number;
  quality?: number;
  /** The second loudnorm pass, with the first pass's measurements. */
  loudnorm?: string;
  /** Hz of the audio converted, when the source declares it. */
  sampleRate?: number;
}

/** Cover pictures are at most this wide and high: enough for any player's artwork view. */
const coverPixels = 600;
/**
 * A downmix's gains per output add up to this at most (-1.5 dB): however loud the channels and
 * however they line up, the stereo (or mono) mix stays 1.5 dB under the loudest of them, so
 * nothing clips and the MP3's own overshoot still stays under -1 dBTP.
 */
const downmixMaxGain = 0.84;

/** How far ffmpeg has got into the audio, in percent of its declared duration (0–100). */
export type OnProgress = (percent: number) => void;

/** `onProgress` is called as ffmpeg reports (about twice a second) when the input declares its duration. */
export type Transcode = (input: string, output: string, wanted?: Wanted, onProgress?: OnProgress) => Promise<Converted>;

export interface Converted {
  durationSeconds: number;
  /** The audio track converted, counted from 1. */
  audioTrack: number;
  /** Encodes joined into the MP3: 1 unless it was encoded in stretches. */
  segments: number;
}

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
 * What to do with this input: the track asked for, else the one the container marks default,
 * else the first; the source's title, else the file's name; a cover frame from 10% in.
 */
export function mp3Plan(dump: InputDump, wanted: Wanted, options: Pick<TranscodeOptions, 'quality' | 'coverArt'>): Mp3Plan {
  const asked = wanted.options ?? {};
  const streams = dump.audioStreams;
  const audioStream = asked.track !== undefined ? asked.track - 1 : Math.max(0, streams.findIndex((s) => s.isDefault));
  if (asked.track !== undefined && streams.length > 0 && audioStream >= streams.length) {
    throw new Unconvertible(`The video has ${streams.length} audio track${streams.length === 1 ? '' : 's'}; track ${asked.track} was asked for.`);
  }
  const channels = streams[audioStream]?.channels ?? 2;
  const downmixTo = asked.channels === 'mono' ? (channels > 1 ? 1 : undefined) : channels > 2 ? 2 : undefined;
  const tag = (key: string) => dump.tags[key] ?? dump.tags[key.toUpperCase()];
  const tags: Tags = {
    title: tag('title') || wanted.title,
    artist: tag('artist') ?? tag('album_artist'),
    album: tag('album'),
    date: tag('date'),
    comment: tag('comment'),
  };
  const start = asked.start;
  if (start !== undefined && dump.durationSeconds !== undefined && start >= dump.durationSeconds) {
    throw new Unconvertible(`The audio is ${clock(Math.round(dump.durationSeconds))} long: it cannot start at ${start} seconds.`);
  }
  const length = asked.end !== undefined ? asked.end - (start ?? 0) : undefined;
  const coverAt = options.coverArt !== false && asked.cover !== false && dump.hasVideo ? (start ?? 0) + ((length ?? dump.durationSeconds ?? 0) * 0.1) : undefined;
  return {
    tags,
    audioStream,
    ...(streams[audioStream]?.sampleRate !== undefined && { sampleRate: streams[audioStream].sampleRate }),
    downmixTo,
    coverAt,
    start,
    length,
    ...(asked.bitrate !== undefined ? { bitrate: asked.bitrate } : { quality: asked.quality ?? options.quality }),
  };
}

/**
 * How every run of a conversion opens its first input: level-prefixed lines (text from the file
 * cannot pose as ffmpeg's own), a CPU-seconds limit, only local media files, from `start`.
 */
function sourceOptions(timeoutSeconds: number, start?: number): string[] {
  return ['-loglevel', 'level+info', '-timelimit', cpuSeconds(timeoutSeconds), ...inputOptions, ...(start ? ['-ss', String(start)] : [])];
}

/** The audio a plan converts: its track, for its length, never past the duration cap (+1 s, see outputBound). */
function selectedAudio(plan: Mp3Plan, maxSeconds: number): string[] {
  return ['-map', `0:a:${plan.audioStream ?? 0}`, '-t', String(Math.min(plan.length ?? Infinity, maxSeconds + 1))];
}

/** The audio filters of a plan, in order: downmix before loudness, so loudnorm measures what is written. */
function audioFilters(plan: Mp3Plan): string[] {
  const filters: string[] = [];
  // aformat asks for the layout and aresample, before it, converts with the capped gains. (Not
  // aresample's own ocl=: FFmpeg 7 dropped it, and the npm build predates its successor ochl=.)
  if (plan.downmixTo) filters.push(`aresample=rematrix_maxval=${downmixMaxGain}`, `aformat=channel_layouts=${plan.downmixTo === 1 ? 'mono' : 'stereo'}`);
  if (plan.loudnorm) filters.push(plan.loudnorm, 'aresample=48000'); // loudnorm works at 192 kHz; MP3 goes to 48
  return filters;
}

/**
 * Audio of a local file → MP3 in a local file, tagged; no video. The output is a file, not a
 * pipe, so ffmpeg can go back and write the Xing header players need for the right duration.
 * fluent-ffmpeg builds the arguments; the benchmark runs the same ones by hand.
 */
export function mp3Command(input: string, output: string, options: TranscodeOptions, plan: Mp3Plan = {}) {
  const { ffmpegPath, timeoutSeconds } = options;
  const maxSeconds = options.maxDurationSeconds ?? defaultMaxDurationSeconds;
  const filters = audioFilters(plan);
  const command = ffmpeg({ timeout: timeoutSeconds })
    .setFfmpegPath(ffmpegPath)
    .input(`file:${input}`)
    // Spread, not an array: fluent-ffmpeg splits an array's "a b" items in two (a title with a space).
    .inputOptions(...sourceOptions(timeoutSeconds, plan.start));
  command.outputOptions(...[
    // The header's duration is the file's claim: stop at the cap whatever it said (`-t`, in
    // selectedAudio). `-fs` counts the bytes written, which no header can bend.
    ...selectedAudio(plan, maxSeconds), '-abort_on', 'empty_output', '-fs', String(options.maxOutputBytes ?? outputBound(maxSeconds)),
    ...(filters.length > 0 ? ['-filter:a', filters.join(',')] : []),
    ...tagOptions(plan.tags),
  ]);
  command.noVideo().audioCodec('libmp3lame');
  if (plan.bitrate !== undefined) command.audioBitrate(plan.bitrate);
  else command.audioQuality(plan.quality ?? options.quality);
  return command.format('mp3').output(`file:${output}`);
}

/**
 * Tags earshot chooses: none of the container's, no chapters, no encoder version. ffmpeg owns
 * `encoder` (TSSE: its version, or nothing with +bitexact), so earshot signs as TENC.
 */
function tagOptions(tags: Tags = {}): string[] {
  const chosen = Object.entries(tags)
    .map(([key, value]) => [key, displayText(value ?? '')] as const)
    .filter(([, value]) => value);
  return [
    '-map_metadata', '-1', '-map_chapters', '-1', '-fflags', '+bitexact', '-id3v2_version', '3',
    ...chosen.flatMap(([key, value]) => ['-metadata', `${key}=${value}`]),
    '-metadata', 'encoded_by=earshot',
  ];
}

/**
 * The MP3 again, its audio and tags copied, with a frame of the video at `coverAt` as its cover
 * picture. A step of its own, not a second input of the encode: with a video stream in the
 * output, FFmpeg 7 reports the video's time in its progress lines (the percent would stay at 0
 * and the duration read from them would be one frame's), and `-frames:v 1` there ends the whole
 * output. The video is read for one second from the frame: decoding on to its end would cost
 * more than the encode.
 */
export function coverCommand(mp3: string, input: string, output: string, options: TranscodeOptions, coverAt: number) {
  return ffmpeg({ timeout: options.timeoutSeconds })
    .setFfmpegPath(options.ffmpegPath)
    .input(`file:${mp3}`)
    .inputOptions(...sourceOptions(options.timeoutSeconds))
    .input(`file:${input}`)
    .inputOptions(...inputOptions, '-ss', coverAt.toFixed(3), '-t', '1')
    .outputOptions(...[
      '-map', '0:a', '-c:a', 'copy', '-map_metadata', '0', '-map_chapters', '-1', '-fflags', '+bitexact', '-id3v2_version', '3',
      '-map', '1:v:0', '-c:v', 'mjpeg', '-q:v', '3', '-disposition:v', 'attached_pic',
      '-filter:v', `trim=end_frame=1,scale=w=min(${coverPixels}\\,iw):h=min(${coverPixels}\\,ih):force_original_aspect_ratio=decrease,format=yuvj420p`,
      '-metadata:s:v', 'title=Cover', '-metadata:s:v', 'comment=Cover (front)',
    ])
    .format('mp3')
    .output(`file:${output}`);
}

export function mp3Transcoder(options: TranscodeOptions): Transcode {
  const { ffmpegPath, timeoutSeconds } = options;
  const maxSeconds = options.maxDurationSeconds ?? defaultMaxDurationSeconds;
  const maxBytes = options.maxOutputBytes ?? outputBound(maxSeconds);
  // Up to half a second over the cap is rounding, not a longer file.
  const tooLong = (seconds: number) => seconds > maxSeconds + 0.5;

  return async (input, output, wanted = {}, onProgress) => {
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
    let plan = mp3Plan(probe, wanted, options);
    const target = wanted.options?.loudness;
    if (target !== undefined) {
      const measured = await measureLoudness(input, plan, target, { ...options, timeoutSeconds: remaining });
      plan = { ...plan, loudnorm: loudnormFilter(target, measured) };
    }
    const declared = plan.length ?? (probe.durationSeconds !== undefined ? probe.durationSeconds - (plan.start ?? 0) : undefined);
    const progress = onProgress && declared && declared > 0 ? (seconds: number) => onProgress(Math.min(100, (seconds / declared) * 100)) : undefined;
    const left = (deadline - performance.now()) / 1000;
    if (left <= 0) throw tookTooLong(timeoutSeconds);
    const audio = plan.coverAt === undefined ? output : `${output}.audio`;
    // Each step gets what is left of the budget; a timeout is reported as the whole budget's.
    const leftNow = () => ({ ...options, timeoutSeconds: Math.max(0, (deadline - performance.now()) / 1000) });
    const stretched = segmentable(plan, declared, options) ? await inStretches(input, audio, leftNow(), plan, declared!, timeoutSeconds, progress) : undefined;
    const encoded = stretched ?? (await onePass(input, audio, leftNow(), plan, timeoutSeconds, progress));
    const size = await stat(audio).then((s) => s.size, () => 0);
    if (size === 0) throw new Unconvertible('No audio could be extracted from the video.');
    const { durationSeconds, segments } = encoded;
    // Stopped by -t or -fs: the header understated the audio. Storing the first hours as if they
    // were the whole would lose the rest without a word; the user is told the limit instead.
    if (tooLong(durationSeconds) || size >= maxBytes) {
      throw new Unconvertible(`The audio runs past ${clock(maxSeconds)}; earshot converts up to ${clock(maxSeconds)}.`);
    }
    if (plan.coverAt !== undefined) await withCover(audio, input, output, options, plan.coverAt, deadline);
    return { durationSeconds, audioTrack: (plan.audioStream ?? 0) + 1, segments };
  };
}

/** `options.timeoutSeconds` is what is left; `budget`, the whole conversion's, is what a timeout reports. */
async function onePass(input: string, output: string, options: TranscodeOptions, plan: Mp3Plan, budget: number, onTime?: (seconds: number) => void) {
  if (options.timeoutSeconds <= 0) throw tookTooLong(budget);
  const stderr = await run(mp3Command(input, output, options, plan), budget, onTime);
  return { durationSeconds: lastTimestamp(stderr), segments: 1 };
}

/**
 * Whether to encode in stretches: long enough, more than one worker, and audio whose samples
 * map one to one onto the MP3's (an MPEG-1 rate, no resampling loudnorm).
 */
function segmentable(plan: Mp3Plan, seconds: number | undefined, options: TranscodeOptions): boolean {
  const workers = options.workers ?? 1;
  const rate = plan.sampleRate;
  return workers > 1 && seconds !== undefined && seconds >= 2 * (options.segmentSeconds ?? 60) && !plan.loudnorm && (rate === 32000 || rate === 44100 || rate === 48000);
}

/**
 * The longest stretch: its MP3 is read whole when joining, two at a time (30 minutes: 72 MB at
 * 320 kbit/s). Longer audio takes more rounds of stretches, which costs a little: a 40-minute
 * video on 2 CPUs took 6.9 s as 2 stretches and 7.8 s as 4.
 */
const maxStretchSeconds = 1800;

/**
 * The plan's audio encoded in stretches, `workers` at a time, and joined (see segments.ts).
 * Undefined when the pieces cannot be joined (the audio ended before its declared length, say):
 * the caller then encodes in one pass, as if it had never tried.
 */
async function inStretches(input: string, output: string, options: TranscodeOptions, plan: Mp3Plan, seconds: number, budget: number, onTime?: (seconds: number) => void) {
  const rate = plan.sampleRate!;
  const maxSeconds = options.maxDurationSeconds ?? defaultMaxDurationSeconds;
  const workers = options.workers ?? 1;
  // Whole rounds of `workers` stretches: 3 stretches on 2 workers would take two rounds for 1.5 stretches' work.
  const rounds = Math.ceil(seconds / (workers * maxStretchSeconds));
  const count = Math.min(Math.floor(seconds / (options.segmentSeconds ?? 60)), rounds * workers);
  const parts = stretches(Math.round(seconds * rate), count);
  const done = parts.map(() => 0);
  const files = parts.map((_, k) => `${output}.${k}`);
  const encode = (k: number) => {
    const part = parts[k]!;
    const offset = part.startSample / rate;
    const piece: Mp3Plan = {
      ...plan,
      // The first stretch's tags are the whole's (the join keeps its ID3v2 tag).
      tags: k === 0 ? plan.tags : undefined,
      coverAt: undefined,
      // The first starts where a single pass would: a seek, even to 0, decodes differently.
      start: k === 0 ? plan.start : (plan.start ?? 0) + offset,
      length: part.samples !== undefined ? part.samples / rate : Math.min(plan.length ?? Infinity, maxSeconds + 1) - offset,
    };
    return run(mp3Command(input, files[k]!, options, piece), budget, (t) => {
      done[k] = t;
      onTime?.(done.reduce((a, b) => a + b, 0));
    });
  };
  try {
    await inTurn(parts.length, workers, encode);
    const joined = await joinMp3(parts.map((part, k) => ({ path: files[k]!, from: part.from, count: part.count })), output);
    return { durationSeconds: joined.samples / joined.sampleRate, segments: count };
  } catch (err) {
    // A stretch found no audio (it ends before the container says) or could not be joined:
    // the single pass decides, with its own answer. Out of time is out of time.
    if (err instanceof NotJoinable || (err instanceof Unconvertible && !(err instanceof TimedOut))) {
      await rm(output, { force: true }); // a join cut short: ffmpeg writes no file that exists
      return undefined;
    }
    throw err;
  } finally {
    await Promise.all(files.map((f) => rm(f, { force: true })));
  }
}

/**
 * Adds the cover to the encoded MP3 at `audio`, writing `output`. The cover is a nicety: a video
 * whose frame cannot be taken (or no time left for it) gets the MP3 without one, not a failure.
 */
async function withCover(audio: string, input: string, output: string, options: TranscodeOptions, coverAt: number, deadline: number): Promise<void> {
  const left = (deadline - performance.now()) / 1000;
  const covered = left > 0 && (await run(coverCommand(audio, input, output, { ...options, timeoutSeconds: left }, coverAt), left).then(() => true, () => false));
  if (covered) await rm(audio, { force: true });
  else await rename(audio, output);
}

/** What loudnorm's first pass measured, as it prints it. */
interface LoudnessMeasurement {
  input_i: string;
  input_tp: string;
  input_lra: string;
  input_thresh: string;
  target_offset: string;
}

/**
 * The first of two loudnorm passes: decodes the audio the plan converts (same track, trim and
 * downmix) and measures it. Two passes because one-pass loudnorm adjusts its gain as it goes.
 */
async function measureLoudness(input: string, plan: Mp3Plan, target: number, options: TranscodeOptions): Promise<LoudnessMeasurement> {
  const maxSeconds = options.maxDurationSeconds ?? defaultMaxDurationSeconds;
  const filters = [...audioFilters({ downmixTo: plan.downmixTo }), `loudnorm=I=${target}:TP=-1:LRA=11:print_format=json`];
  // Same input, track, trim and downmix as the conversion; the output is measured, not kept.
  const measuring = ffmpeg({ timeout: options.timeoutSeconds })
    .setFfmpegPath(options.ffmpegPath)
    .input(`file:${input}`)
    .inputOptions(...sourceOptions(options.timeoutSeconds, plan.start))
    .outputOptions(...selectedAudio(plan, maxSeconds), '-filter:a', filters.join(','))
    .format('null')
    .output('-');
  const stderr = await run(measuring, options.timeoutSeconds);
  const json = /\{[^{}]*"input_i"[^{}]*\}/.exec(stderr)?.[0];
  const measured = json ? (JSON.parse(json) as Partial<LoudnessMeasurement>) : {};
  const keys = ['input_i', 'input_tp', 'input_lra', 'input_thresh', 'target_offset'] as const;
  if (!keys.every((k) => /^-?(?:\d+(?:\.\d+)?|inf)$/.test(measured[k] ?? ''))) throw new Error(`loudnorm measured nothing usable:\n${stderr.slice(-2000)}`);
  return measured as LoudnessMeasurement;
}

/** The second loudnorm pass: the measured values make it a fixed gain (linear) where it can be. */
function loudnormFilter(target: number, m: LoudnessMeasurement): string {
  // Silence measures -inf; loudnorm takes no infinities, and there is nothing to bring up anyway.
  const finite = (value: string, floor: number) => (/inf/.test(value) ? String(floor) : value);
  return `loudnorm=I=${target}:TP=-1:LRA=11:measured_I=${finite(m.input_i, -70)}:measured_TP=${finite(m.input_tp, -70)}:measured_LRA=${finite(m.input_lra, 0)}:measured_thresh=${finite(m.input_thresh, -70)}:offset=${finite(m.target_offset, 0)}:linear=true`;
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

class TimedOut extends Unconvertible {}

const tookTooLong = (timeoutSeconds: number) => new TimedOut(`The video took longer than ${timeoutSeconds} seconds to convert.`);

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
