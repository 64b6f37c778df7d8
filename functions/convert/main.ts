import { tmpdir } from 'node:os';
import { envReader } from '../../shared/config';
import { runFunction } from '../../shared/serve';
import { keepSourceVideos, mediaUrl, mp3RetentionMs } from '../../shared/settings';
import { openStores } from '../../shared/stores';
import { createApp } from './app';
import { cpuLimit } from './cpus';
import { chooseFfmpeg } from './ffmpeg-binary';
import { sweepTempFolders } from './sweep';
import { defaultMaxDurationSeconds, mp3Transcoder, type Transcode } from './transcode';

await runFunction('convert', async (env, log) => {
  const read = envReader(env);
  // The image sets FFMPEG_PATH to its distribution's build; make dev takes the system's if any.
  // Checked while convert starts serving: two ffmpeg runs (~130 ms) would double its cold start.
  // A conversion waits for the check; a binary that fails it ends the process as a bad setting would.
  const ffmpeg = chooseFfmpeg(env, async () => (await import('@ffmpeg-installer/ffmpeg')).default.path);
  ffmpeg.then(
    (chosen) => log.info('ffmpeg', { ...chosen }),
    (err: Error) => {
      log.error('invalid configuration', { variable: 'FFMPEG_PATH', detail: err.message });
      process.exit(78); // EX_CONFIG, as for any setting
    },
  );
  const quality = read.int('MP3_QUALITY', 2, { min: 0, max: 9 });
  const timeoutSeconds = read.int('FFMPEG_TIMEOUT_SECONDS', 900, { min: 1 });
  const maxDurationSeconds = read.int('MAX_DURATION_SECONDS', defaultMaxDurationSeconds, { min: 1, max: 24 * 3600 });
  // Long audio is encoded in stretches at once, as many as the pod's CPU limit allows.
  const workers = read.int('CONVERT_WORKERS', cpuLimit(), { min: 1, max: 64 });
  const segmentSeconds = read.int('CONVERT_SEGMENT_SECONDS', 60, { min: 10 });

  // Folders of a convert that was killed before its cleanup ran. Idle for the ffmpeg timeout
  // plus 10 minutes (spooling and storing are outside that timeout) means no live conversion
  // owns them. Swept in the background, reported once serving: 'listening' is the first line.
  const swept = sweepTempFolders(tmpdir(), (timeoutSeconds + 600) * 1000);
  let reported = false;
  const report = () => {
    if (reported) return;
    reported = true;
    void swept.then((folders) => folders.length > 0 && log.warn('removed temp folders of an earlier convert', { folders }));
  };

  const stores = await openStores(mediaUrl(read));
  const transcoder = ffmpeg.then((chosen) => mp3Transcoder({ ffmpegPath: chosen.path, quality, timeoutSeconds, maxDurationSeconds, workers, segmentSeconds }));
  transcoder.catch(() => {}); // reported above
  const transcode: Transcode = async (...args) => (await transcoder)(...args);
  const leaseMs = read.int('CONVERT_LEASE_SECONDS', 60, { min: 1 }) * 1000;
  const app = createApp({ ...stores, transcode, leaseMs, retentionMs: mp3RetentionMs(read), keepSourceVideos: keepSourceVideos(read), log });
  return {
    fetch: (request) => {
      report();
      return app.fetch(request);
    },
    close: stores.close,
    started: { workers },
  };
});
