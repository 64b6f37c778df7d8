import { execFile, type ExecFileException } from 'node:child_process';

/** Demuxers ffmpeg may use: media containers only, none that open other files or URLs (HLS, concat). */
const demuxers = 'mov,mp4,m4a,3gp,matroska,webm,avi,flv,mpegts,mpeg,ogg,asf,wav,w64,mp3,aac,flac,rm,aiff,amr,caf';

/** How every ffmpeg run opens its input: the local file it is given and nothing it points to. */
export const inputOptions = ['-nostdin', '-protocol_whitelist', 'file', '-format_whitelist', demuxers];

export type Probe =
  | { kind: 'audio'; /** What the container declares; undefined when it declares none. */ durationSeconds?: number }
  | { kind: 'no-audio' }
  /** ffmpeg could not open the file as media (or something of ours failed): its stderr says which. */
  | { kind: 'unreadable'; stderr: string }
  | { kind: 'timeout' };

/**
 * What a file holds, from its headers, before any decoding. The npm ffmpeg has no ffprobe, so
 * ffmpeg itself opens the file and copies nothing (`-t 0`) of its first audio stream: whether
 * that stream exists is ffmpeg's own stream selection, and the declared duration is read from
 * its dump of the input (see `declaredDuration`). Costs one short ffmpeg run.
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
      if (!err) return resolve({ kind: 'audio', durationSeconds: declaredDuration(stderr) });
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
 * The `Duration:` of ffmpeg's dump of input #0, in seconds. Only ffmpeg's own lines count (they
 * carry the level prefix) and the entries of `Metadata:` blocks are skipped, so no tag, whatever
 * its key or value, can pass for the duration line. Same layout in the npm 2018 build and 5.1.
 */
export function declaredDuration(stderr: string): number | undefined {
  let inInput = false;
  let metadataIndent = -1;
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
    if (!inInput || (metadataIndent >= 0 && indent > metadataIndent)) continue;
    metadataIndent = text.trimEnd() === 'Metadata:' ? indent : -1;
    const duration = /^Duration: (?:N\/A|(\d+):(\d{2}):(\d{2}(?:\.\d+)?))/.exec(text);
    if (duration) {
      if (duration[1] === undefined) return undefined;
      return Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]);
    }
  }
  return undefined;
}
