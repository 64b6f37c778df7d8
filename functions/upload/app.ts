import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { functionApp, type FunctionEnv } from '../../shared/app';
import { bearerAuth, type AuthEnv, type VerifyToken } from '../../shared/auth';
import { BadOption, parseOptionFields, type ConvertOptions } from '../../shared/convert-options';
import { EventTypes, makeEvent } from '../../shared/events';
import type { JobStore } from '../../shared/jobs/store';
import type { Logger } from '../../shared/log';
import type { MediaInfo, MediaStore } from '../../shared/media/store';
import { Problem, badRequest } from '../../shared/problem';
import type { Emit } from '../../shared/broker';
import { uploadLimiter, type UploadLimits } from './limits';
import { receiveOneFile } from './multipart';
import { defaultQuotaBytes, storageQuota, type Room } from './quota';
import { sniffMedia } from './sniff';

export interface UploadDeps {
  media: MediaStore;
  jobs: JobStore;
  verify: VerifyToken;
  emit: Emit;
  maxUploadBytes: number;
  limits: UploadLimits;
  /** The bytes a user may store, videos and MP3s together (`MAX_STORED_BYTES_PER_USER`); 5 GiB unless given. */
  quotaBytes?: number;
  /** Where clients reach the download function; status URLs are relative without it. */
  downloadUrl?: URL;
  log: Logger;
  /** The web page's origins (CORS). */
  corsOrigins?: readonly string[];
}

type Env = FunctionEnv & AuthEnv & { Variables: { room: Room } };

export function createApp({ media, jobs, verify, emit, maxUploadBytes, limits, quotaBytes = defaultQuotaBytes, downloadUrl, log, corsOrigins }: UploadDeps) {
  const app = functionApp<Env>(log, { corsOrigins });
  const limiter = uploadLimiter(jobs, limits, log);
  const quota = storageQuota({ media, quotaBytes, maxUploadBytes, deleteUrl: `${jobsUrl(downloadUrl)}{id}` });

  /**
   * Before the body is read: a user at the quota, or with an upload whose declared length does
   * not fit in what is left, is answered 413 and nothing is stored; the rest may store a file of
   * at most what is left (`room`).
   */
  const withinQuota: MiddlewareHandler<Env> = async (c, next) => {
    const declared = Number(c.req.header('content-length'));
    c.set('room', await quota.admit(c.get('log'), c.get('user').id, Number.isFinite(declared) ? declared : 0));
    await next();
  };

  /** Before the body is read: a user over a limit costs a count, and nothing is stored. */
  const withinLimits: MiddlewareHandler<Env> = async (c, next) => {
    const release = await limiter.admit(c.get('user').id);
    try {
      await next();
    } finally {
      release();
    }
  };

  app.post('/upload', bearerAuth(verify), withinQuota, withinLimits, async (c) => {
    const user = c.get('user');
    const room = c.get('room');
    const videoId = randomUUID();
    let options: ConvertOptions = {};
    let fields: ReadonlyMap<string, string> = new Map();

    const video = await receiveOneFile(
      c.req.raw,
      { maxFileBytes: room.maxFileBytes },
      async (file): Promise<MediaInfo> => {
        // Those sent before the file, checked before a byte is stored: a bad one costs nothing.
        fields = file.fields;
        options = convertOptions(fields, () => file.stream.resume());
        const { mediaType, stream } = await sniffMedia(file.stream);
        if (!mediaType) {
          stream.resume();
          throw new Problem({
            status: 415,
            title: 'Unsupported Media Type',
            detail: `"${file.filename}" is not a video or audio file earshot can read.`,
          });
        }
        return media.put('videos', videoId, { owner: user.id, filename: file.filename, contentType: mediaType }, stream);
      },
      (stored) => media.delete('videos', stored.id),
    ).catch((err: unknown) => {
      // Past what is left of the quota: its answer, not the size limit's (the file is gone by now).
      throw quota.explain(err, c.get('log'), user.id, room);
    });
    // A client orders the parts as it likes: fields after the file count too, all checked again.
    try {
      options = convertOptions(fields, () => undefined);
    } catch (err) {
      await media.delete('videos', video.id);
      throw err;
    }

    // The address as the verified token gave it: notify mails this one, never an event's.
    await jobs.create({ id: videoId, owner: user.id, ownerEmail: user.email, filename: video.filename, ...(Object.keys(options).length > 0 && { options }) });
    const event = makeEvent(EventTypes.videoUploaded, '/earshot/upload', videoId, {
      videoId,
      owner: { id: user.id, email: user.email },
      filename: video.filename,
      contentType: video.contentType,
      sizeBytes: video.length,
    });
    try {
      await emit(event);
    } catch (err) {
      // The client gets no id, so nothing may stay behind. If the event did reach the broker
      // after all, convert finds no job and drops it: no MP3, no email.
      log.error('event not delivered; upload withdrawn', { eventId: event.id, err });
      await jobs.delete(videoId);
      await media.delete('videos', videoId);
      throw new Problem({
        status: 503,
        title: 'Service Unavailable',
        detail: 'The upload could not be queued for conversion; nothing was kept. Try again shortly.',
        headers: { 'retry-after': '30' },
      });
    }
    c.set('eventId', event.id);

    const statusUrl = downloadUrl ? new URL(`jobs/${videoId}`, withSlash(downloadUrl)).href : `/jobs/${videoId}`;
    c.header('location', statusUrl);
    return c.json({ videoId, statusUrl }, 202);
  });

  return app;
}

/** The form fields as conversion options; a bad one → 400 naming it (after `drop`, which lets go of the file). */
function convertOptions(fields: ReadonlyMap<string, string>, drop: () => void): ConvertOptions {
  try {
    return parseOptionFields(fields);
  } catch (err) {
    if (!(err instanceof BadOption)) throw err;
    drop();
    throw badRequest(err.message);
  }
}

const withSlash = (url: URL) => (url.href.endsWith('/') ? url : new URL(`${url.href}/`));
/** Where jobs are (`DELETE …/{id}`), ending in `/`: on the download function when its URL is known, else relative, as status URLs are. */
const jobsUrl = (downloadUrl: URL | undefined) => (downloadUrl ? new URL('jobs/', withSlash(downloadUrl)).href : '/jobs/');
