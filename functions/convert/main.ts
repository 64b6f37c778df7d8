import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { ConfigError, envReader } from '../../shared/config';
import { runFunction } from '../../shared/serve';
import { mediaUrl } from '../../shared/settings';
import { openStores } from '../../shared/stores';
import { createApp } from './app';
import { mp3Transcoder } from './transcode';

await runFunction('convert', async (env, log) => {
  const read = envReader(env);
  // The npm binary always works; the container image sets FFMPEG_PATH to a faster distro build.
  const ffmpegPath = read.optional('FFMPEG_PATH') ?? (await import('@ffmpeg-installer/ffmpeg')).default.path;
  await access(ffmpegPath, constants.X_OK).catch(() => {
    throw new ConfigError('FFMPEG_PATH', `must be the path of an executable ffmpeg, got "${ffmpegPath}"`);
  });
  const quality = read.int('MP3_QUALITY', 2, { min: 0, max: 9 });
  const timeoutSeconds = read.int('FFMPEG_TIMEOUT_SECONDS', 900, { min: 1 });
  const stores = await openStores(mediaUrl(read));

  const transcode = mp3Transcoder({ ffmpegPath, quality, timeoutSeconds });
  const leaseMs = read.int('CONVERT_LEASE_SECONDS', 60, { min: 1 }) * 1000;
  const app = createApp({ ...stores, transcode, leaseMs, log });
  return { fetch: app.fetch, close: stores.close };
});
