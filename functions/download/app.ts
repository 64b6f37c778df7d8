import type { Readable } from 'node:stream';
import contentDisposition from 'content-disposition';
import type { Context } from 'hono';
import { except } from 'hono/combine';
import { functionApp, type FunctionEnv } from '../../shared/app';
import { bearerAuth, type AuthEnv, type VerifyToken } from '../../shared/auth';
import { hasExpired, removeJob } from '../../shared/jobs/retention';
import type { Job, JobStore } from '../../shared/jobs/store';
import type { Logger } from '../../shared/log';
import { LINK_PARAM, shownTime, signedPath, type Links, type SignedLink } from '../../shared/links';
import { isMediaId, type MediaStore } from '../../shared/media/store';
import { Problem, notFound } from '../../shared/problem';
import { displayText } from '../../shared/text';
import { ownedJob } from './owned';
import { jobEvents, streamDefaults, type JobEventsOptions } from './events';
import { jobList } from './list';
import { requestedRange } from './range';

export interface DownloadDeps {
  media: MediaStore;
  jobs: JobStore;
  verify: VerifyToken;
  /** Signs the job view's link and checks the links people bring. */
  links: Links;
  log: Logger;
  /** GET /jobs/:id/events: how often it polls the store and sends a heartbeat. */
  events?: JobEventsOptions;
  /** The web page's origins (CORS). */
  corsOrigins?: readonly string[];
}

type Env = FunctionEnv & AuthEnv;

export function createApp({ media, jobs, verify, links, log, events = streamDefaults, corsOrigins }: DownloadDeps) {
  const app = functionApp<Env>(log, { corsOrigins });
  const bearer = bearerAuth(verify);
  // A signed link is opened by a browser, which sends no Authorization header; a request that
  // sends one is a Bearer request, as before, whatever its query says.
  const signature = (c: Context) => (c.req.header('authorization') === undefined ? c.req.query(LINK_PARAM) : undefined);
  app.use('/download/*', except((c) => signature(c) !== undefined, bearer));
  app.use('/download', bearer);
  app.use('/jobs/*', bearer);

  /** `mayHave`: the owner check of a Bearer request; a signed link has been checked already. */
  const serveMp3 = async (c: Context<Env>, id: string | undefined, mayHave: (owner: string) => boolean) => {
    const valid = id !== undefined && isMediaId(id);
    // An MP3 has the id of its job, which says whether it expired.
    const [mp3, job] = valid ? await Promise.all([media.stat('mp3s', id), jobs.get(id)]) : [null, null];
    if (job && job.mp3?.id === id && mayHave(job.owner) && hasExpired(job)) throw expiredMp3(job);
    // Someone else's MP3 is answered exactly like a missing one: ids leak nothing.
    if (!mp3 || !mayHave(mp3.owner)) throw notFound('No such MP3.');

    const etag = `"mp3-${mp3.id}-${mp3.length}"`;
    const headers: Record<string, string> = {
      'content-type': 'audio/mpeg',
      'content-disposition': attachment(mp3.filename),
      'accept-ranges': 'bytes',
      etag,
      'last-modified': mp3.createdAt.toUTCString(),
      'cache-control': 'private, max-age=86400',
    };
    if (matches(c.req.header('if-none-match'), etag)) return new Response(null, { status: 304, headers });

    const ifRange = c.req.header('if-range');
    const range = !ifRange || ifRange === etag ? requestedRange(mp3.length, c.req.header('range')) : undefined;
    if (range === 'unsatisfiable') {
      throw new Problem({
        status: 416,
        title: 'Range Not Satisfiable',
        detail: `The MP3 has ${mp3.length} bytes.`,
        headers: { 'content-range': `bytes */${mp3.length}` },
      });
    }

    const length = range ? range.end - range.start + 1 : mp3.length;
    headers['content-length'] = String(length);
    if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${mp3.length}`;
    const status = range ? 206 : 200;
    if (c.req.method === 'HEAD' || length === 0) return new Response(null, { status, headers });

    return new Response(pulled(await media.read('mp3s', mp3.id, range)), { status, headers });
  };

  const owned = (c: Context<Env>) => (owner: string) => owner === c.get('user').id;

  app.get('/download/:id', async (c) => {
    const id = c.req.param('id');
    const token = signature(c);
    if (token === undefined) return serveMp3(c, id, owned(c));
    // The signature is checked before the store is asked: a made-up link learns nothing.
    const check = await links.verify(token, id);
    if (check.ok) return serveMp3(c, id, () => true);
    if (check.reason === 'expired') {
      throw new Problem({
        status: 410,
        title: 'Gone',
        detail: `This download link expired on ${shownTime(check.expiredAt)}. Sign in to earshot for a fresh link.`,
        extensions: { expiredAt: check.expiredAt.toISOString() },
      });
    }
    throw notFound(
      check.reason === 'other-mp3'
        ? 'This download link is for another MP3.'
        : 'This download link is not valid: it was changed, or it was signed with a key earshot no longer uses. Sign in to earshot for a fresh link.',
    );
  });
  /** The original system's form. */
  app.get('/download', (c) => serveMp3(c, c.req.query('fid'), owned(c)));

  const view = async (job: Job) => jobView(job, job.mp3 && (await links.sign(job.mp3.id)));

  app.get('/jobs/:id', async (c) => {
    const job = await ownedJob(jobs, c.req.param('id'), c.get('user').id);
    if (!job) throw notFound('No such job.');
    c.header('cache-control', 'no-store');
    return c.json(await view(job));
  });
  /** The owner removes a job with its MP3 and video; anyone else learns nothing (404). */
  app.delete('/jobs/:id', async (c) => {
    const job = await ownedJob(jobs, c.req.param('id'), c.get('user').id);
    if (!job) throw notFound('No such job.');
    await removeJob(media, jobs, job);
    log.info('job removed', { videoId: job.id });
    return c.body(null, 204);
  });
  app.route('/', jobList(jobs, view));
  app.route('/', jobEvents(jobs, view, events));

  return app;
}

function expiredMp3(job: Job): Problem {
  const at = job.expiresAt;
  return new Problem({
    status: 410,
    title: 'Gone',
    detail: `This MP3 expired${at ? ` on ${shownTime(at)}` : ''} and was deleted. Upload the video again for a new one.`,
    ...(at && { extensions: { expiredAt: at.toISOString() } }),
  });
}

/** `link`: a fresh signed link to the MP3, while there is one to download. */
function jobView(job: Job, link: SignedLink | undefined) {
  const downloadable = job.mp3 && !hasExpired(job);
  return {
    id: job.id,
    status: job.status,
    filename: job.filename,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    ...(job.options && { options: job.options }),
    ...(job.mp3 && { mp3: { id: job.mp3.id, durationSeconds: job.mp3.durationSeconds, sizeBytes: job.mp3.sizeBytes, ...(job.mp3.audioTrack && { audioTrack: job.mp3.audioTrack }) } }),
    ...(job.expiresAt && { expiresAt: job.expiresAt.toISOString() }),
    ...(job.mp3 && hasExpired(job) && { expired: true }),
    ...(downloadable && { downloadUrl: `/download/${job.mp3!.id}` }),
    ...(downloadable && link && { signedUrl: signedPath(job.mp3!.id, link.token), linkExpiresAt: link.expiresAt.toISOString() }),
    ...(job.failure && { error: job.failure }),
  };
}

/**
 * A web stream that reads from the store only as fast as the client takes the bytes. (Node 20's
 * Readable.toWeb reads ahead without limit: a slow client made the whole file pile up in memory.)
 */
function pulled(stream: Readable): ReadableStream<Uint8Array> {
  const chunks = stream[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await chunks.next();
        if (done) controller.close();
        else controller.enqueue(value as Uint8Array);
      },
      cancel(reason) {
        stream.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * `attachment` with the name as the user gave it in `filename*` (RFC 6266/8187: UTF-8, any
 * script), less the control and bidi characters that could split the header or disguise the
 * name, and a plain-ASCII `filename` for clients that know no `filename*`.
 */
function attachment(filename: string): string {
  const shown = displayText(filename) || 'audio.mp3';
  const ascii = shown.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/[^\x20-\x7e]/g, '_');
  return contentDisposition(shown, { fallback: ascii });
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
