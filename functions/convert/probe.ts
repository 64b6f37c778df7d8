import { execFile, type ExecFileException } from 'node:child_process';

/** Demuxers ffmpeg may use: media containers only, none that open other files or URLs (HLS, concat). */
const demuxers = 'mov,mp4,m4a,3gp,matroska,webm,avi,flv,mpegts,mpeg,ogg,asf,wav,w64,mp3,aac,flac,rm,aiff,amr,caf';

/** How every ffmpeg run opens its input: the local file it is given and nothing it points to. */
export const inputOptions = ['-nostdin', '-protocol_whitelist', 'file', '-format_whitelist', demuxers];

/** One audio stream of the input, in the order ffmpeg numbers them (`0:a:N`). */
export interface AudioStream {
  channels: number;
  /** Hz, as the stream declares it; undefined when it declares none. */
  sampleRate?: number;
  /** The container marks it the one to play. */
  isDefault: boolean;
}

/** What ffmpeg's dump of input #0 says about the file. */
export interface InputDump {
  /** What the container declares; undefined when it declares none. */
  durationSeconds?: number;
  /** The container's own tags (not the streams'), first line of each value, as the file has them: not yet fit to show. */
  tags: Record<string, string>;
  audioStreams: AudioStream[];
  /** A picture stream that is not cover art: a video to take a frame from. */
  hasVideo: boolean;
}

export type Probe =
  | ({ kind: 'audio' } & InputDump)
  | { kind: 'no-audio' }
  /** ffmpeg could not open the file as media (or something of ours failed): its stderr says which. */
  | { kind: 'unreadable'; stderr: string }
  | { kind: 'timeout' };

/**
 * What a file holds, from its headers, before any decoding. The npm ffmpeg has no ffprobe, so
 * ffmpeg itself opens the file and copies nothing (`-t 0`) of its first audio stream: whether
 * that stream exists is ffmpeg's own stream selection, and the declared duration is read from
 * its dump of the input (see `readDump`). Costs one short ffmpeg run.
 */
export function probeMedia(ffmpegPath: string, input: string, timeoutSeconds: number): Promise<Probe> {
  const args = [
    '-hide_banner',
    // Each line ffmpeg starts is prefixed with its level: a newline inside a tag starts none.
    '-loglevel', 'level+info',
    // CPU seconds: ends the probe even if its parent is killed and cannot.
    '-timelimit', String(Math.max(1, Math.ceil(timeoutSeconds))),
    ...inputOptions,
    '-i', `file:${input}`,
    '-map', '0:a:0', '-c', 'copy', '-t', '0', '-f', 'null', '-',
  ];
  return new Promise((resolve, reject) => {
    execFile(ffmpegPath, args, { timeout: Math.max(1, timeoutSeconds * 1000), killSignal: 'SIGKILL', maxBuffer: 8 << 20 }, (err, _stdout, stderr) => {
      if (!err) return resolve({ kind: 'audio', ...readDump(stderr) });
      const { code, signal, killed } = err as ExecFileException;
      const overflow = code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER';
      // SIGXCPU is -timelimit; ffmpeg catches it and exits 255 "received signal 24".
      if ((killed && !overflow) || signal === 'SIGXCPU' || /^\[info\] Exiting normally, received signal 24\b/m.test(stderr)) return resolve({ kind: 'timeout' });
      if ((typeof code === 'string' && !overflow) || signal) return reject(err); // not started, or killed by others (OOM): ours
      if (/^\[(?:fatal|error)\] Stream map '0:a:0' matches no streams/m.test(stderr)) return resolve({ kind: 'no-audio' });
      resolve({ kind: 'unreadable', stderr });
    });
  });
}

/**
 * Reads ffmpeg's dump of input #0. Only ffmpeg's own lines count (they carry the level prefix;
 * the rest of a tag with a newline in it does not), and the container's tags are only the
 * entries of its own `Metadata:` block, so no tag, whatever its key or value, can pass for the
 * duration or a stream. Same layout in the npm 2018 build, 5.1 and 7.
 */
export function readDump(stderr: string): InputDump {
  const dump: InputDump = { tags: {}, audioStreams: [], hasVideo: false };
  let inInput = false;
  let seenDuration = false;
  /** Indent of the `Metadata:` line whose entries follow, -1 outside one. */
  let metadataIndent = -1;
  /** Whether that block is the container's (indent 2), not a stream's. */
  let containerMetadata = false;
  for (const line of stderr.split('\n')) {
    const own = /^\[info\] ( *)(.*)$/.exec(line);
    if (!own) continue;
    const indent = own[1]!.length;
    const text = own[2]!;
    if (indent === 0) {
      inInput = text.startsWith('Input #0,');
      metadataIndent = -1;
      continue;
    }
    if (!inInput) continue;
    if (metadataIndent >= 0 && indent > metadataIndent) {
      if (containerMetadata && indent === metadataIndent + 2) {
        const entry = /^(\S(?:.*?\S)?) *: (.*)$/.exec(text);
        if (entry && !(entry[1]! in dump.tags)) dump.tags[entry[1]!] = entry[2]!;
      }
      continue;
    }
    metadataIndent = text.trimEnd() === 'Metadata:' ? indent : -1;
    containerMetadata = metadataIndent === 2;
    const duration = /^Duration: (?:N\/A|(\d+):(\d{2}):(\d{2}(?:\.\d+)?))/.exec(text);
    if (duration && !seenDuration) {
      seenDuration = true;
      if (duration[1] !== undefined) dump.durationSeconds = Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]);
      continue;
    }
    const stream = /^Stream #0:\d+\S*: (Audio|Video): (.*)$/.exec(text);
    if (stream?.[1] === 'Audio') {
      const rate = /, (\d+) Hz,/.exec(stream[2]!)?.[1];
      dump.audioStreams.push({ channels: channelCount(stream[2]!), ...(rate && { sampleRate: Number(rate) }), isDefault: /\(default\)/.test(stream[2]!) });
    }
    if (stream?.[1] === 'Video' && !/\(attached pic\)/.test(stream[2]!)) dump.hasVideo = true;
  }
  return dump;
}

/** `aac (LC) (…), 44100 Hz, 5.1, fltp` → 6. A layout ffmpeg names but we do not know counts as more than two. */
function channelCount(description: string): number {
  const layout = / Hz, ([^,]+)/.exec(description)?.[1]?.trim() ?? '';
  if (layout === 'mono') return 1;
  if (layout === 'stereo') return 2;
  const counted = /^(\d+) channels/.exec(layout);
  if (counted) return Number(counted[1]);
  const named = /^(\d+)\.(\d+)/.exec(layout); // 5.1, 7.1(wide), 2.1
  return named ? Number(named[1]) + Number(named[2]) : 3;
}
