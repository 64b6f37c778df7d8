import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { envReader } from './config';
import type { TokenAudience } from './auth';
import { parseOrigins } from './cors';
import { linkSigner, loadLinkKeys, type Links } from './links';

type Reader = ReturnType<typeof envReader>;

/** Settings more than one function reads, with their local-development defaults. */

/** Where the embedded defaults keep their files (`make dev`); unused when every URL points elsewhere. */
export const dataDir = (read: Reader): string => resolve(read.string('DATA_DIR', '.earshot'));

export const mediaUrl = (read: Reader): URL => read.url('MEDIA_URL', pathToFileURL(join(dataDir(read), 'store')).href);

export const tokenAudience = (read: Reader): TokenAudience => ({
  issuer: read.string('JWT_ISSUER', 'earshot'),
  audience: read.string('JWT_AUDIENCE', 'earshot'),
});

/**
 * How long an MP3 is kept after its conversion (convert sets it on the job; the sweeper deletes
 * it then). Days, a fraction allowed, so a test can make it seconds.
 */
export const mp3RetentionMs = (read: Reader): number => Math.round(read.number('MP3_RETENTION_DAYS', 30, { min: 0, max: 3660 }) * 24 * 3600 * 1000);

/** Whether convert keeps the uploaded video once its MP3 is stored (the sweeper honours it too). */
export const keepSourceVideos = (read: Reader): boolean => read.boolean('KEEP_SOURCE_VIDEOS', false);

/** How long a signed download link works (notify's email, download's job view): a week by default. */
export const linkTtlSeconds = (read: Reader): number => read.int('LINK_TTL_SECONDS', 7 * 24 * 3600, { min: 60, max: 366 * 24 * 3600 });

/** The signed-link signer of notify and download: `LINK_SIGNING_KEYS` (or the local key set) and `LINK_TTL_SECONDS`. */
export const links = async (read: Reader): Promise<Links> =>
  linkSigner(await loadLinkKeys(read.optional('LINK_SIGNING_KEYS'), dataDir(read)), linkTtlSeconds(read));

/** The web page's origins, for the functions it calls (`CORS_ORIGINS`). */
export const corsOrigins = (read: Reader): string[] => parseOrigins(read.optional('CORS_ORIGINS'));
