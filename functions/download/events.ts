import { setTimeout as sleep } from 'node:timers/promises';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { FunctionEnv } from '../../shared/app';
import type { AuthEnv } from '../../shared/auth';
import type { Job, JobStatus, JobStore, Transition } from '../../shared/jobs/store';
import { ownedJob } from './owned';
import { badRequest, notFound } from '../../shared/problem';

/** The JSON body a job is shown as (app.ts's, so that every field it has is in the events too). */
export type JobView = (job: Job) => object | Promise<object>;

export interface JobEventsOptions {
  /** How often a stream reads its job: the store is polled, as FerretDB has no change streams. */
  pollMs: number;
  /** Longest a stream stays silent: then a comment line goes out, so no proxy takes it for idle. */
  heartbeatMs: number;
  /** Aborted as the process drains: every stream ends, and its client resumes elsewhere with Last-Event-ID. */
  closing?: AbortSignal;
}

export const streamDefaults: JobEventsOptions = { pollMs: 500, heartbeatMs: 15_000 };

/** One change of a job as a watcher is sent it: its SSE `id:` is the revision. */
export type JobEvent =
  /** `job` as it was on entering `status`. */
  | { event: 'status'; revision: number; job: Job }
  | { event: 'progress'; revision: number; percent: number };

const final = (status: JobStatus) => status === 'converted' || status === 'failed';

/**
 * The replay rule: a watcher that has seen revision `after` (its Last-Event-ID; 0 for none) is
 * sent every status the job entered after it, oldest first, then the current progress if that is
 * newer still. Progress reports in between are not replayed, only the latest. Every event's id is
 * the revision it made, so a watcher's last id is always where to resume: nothing is sent twice
 * and no status is missed, however often it reconnects.
 */
export function changesAfter(job: Job, after: number): JobEvent[] {
  const latest = job.transitions.at(-1);
  // Only the status the job is in now comes with its outcome (the MP3, the failure).
  const before = (t: Transition): Job => ({ ...job, status: t.status, updatedAt: t.at, mp3: undefined, failure: undefined });
  const events: JobEvent[] = job.transitions
    .filter((t) => t.revision > after)
    .map((t) => ({ event: 'status', revision: t.revision, job: t === latest ? job : before(t) }));
  if (job.status === 'converting' && job.progress && job.progress.revision > after) {
    events.push({ event: 'progress', revision: job.progress.revision, percent: job.progress.percent });
  }
  return events;
}

/** The id of the last event a reconnecting client saw (SSE's `Last-Event-ID`); 0 for a first connection. */
function lastEventId(header: string | undefined): number {
  if (header === undefined) return 0;
  if (!/^[0-9]{1,15}$/.test(header)) throw badRequest('Last-Event-ID must be the id of an event this stream sent: a whole number.');
  return Number(header);
}

/**
 * `GET /jobs/:id/events`: the job's changes as Server-Sent Events, `status` (data: the job view)
 * and `progress` (data: `{percent}`), ending once the final status (converted or failed) is sent.
 * Mounted behind app.ts's Bearer authentication of `/jobs/*`; someone else's job is a 404.
 */
export function jobEvents(jobs: JobStore, view: JobView, { pollMs, heartbeatMs, closing }: JobEventsOptions) {
  const app = new Hono<FunctionEnv & AuthEnv>();

  app.get('/jobs/:id/events', async (c) => {
    const id = c.req.param('id');
    const owner = c.get('user').id;
    const log = c.get('log');
    const after = lastEventId(c.req.header('last-event-id'));
    const read = () => ownedJob(jobs, id, owner);
    const first = await read();
    if (!first) throw notFound('No such job.');

    // streamSSE sets text/event-stream and Cache-Control: no-cache; nginx-like proxies must not buffer it either.
    c.header('x-accel-buffering', 'no');
    return streamSSE(c, async (stream) => {
      const gone = new AbortController();
      stream.onAbort(() => gone.abort());
      const stop = AbortSignal.any([gone.signal, c.req.raw.signal, ...(closing ? [closing] : [])]);
      let seen = after;
      let job: Job | null = first;
      let quietSince = performance.now();
      let ended = 'client gone';
      try {
        while (job && !stop.aborted) {
          for (const change of changesAfter(job, seen)) {
            const data = change.event === 'status' ? await view(change.job) : { percent: change.percent };
            await stream.writeSSE({ id: String(change.revision), event: change.event, data: JSON.stringify(data) });
            seen = change.revision;
            quietSince = performance.now();
          }
          if (final(job.status)) {
            ended = 'final status sent';
            break;
          }
          if (performance.now() - quietSince >= heartbeatMs) {
            await stream.write(': keep-alive\n\n');
            quietSince = performance.now();
          }
          const untilHeartbeat = heartbeatMs - (performance.now() - quietSince);
          // The timer is cleared by the abort: a client that leaves stops the polling at once.
          await sleep(Math.max(1, Math.min(pollMs, untilHeartbeat)), undefined, { signal: stop }).catch(() => undefined);
          if (!stop.aborted) job = await read();
          if (!job) ended = 'job gone';
        }
        if (stop.aborted && closing?.aborted && !gone.signal.aborted) ended = 'draining';
      } catch (err) {
        // Not streamSSE's own handler: that would send the error's message to the client.
        ended = 'failed';
        log.warn('event stream failed', { jobId: id, err });
      }
      log.info('event stream ended', { jobId: id, lastEventId: seen, reason: ended });
    });
  });

  return app;
}
