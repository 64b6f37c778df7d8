import { Hono } from 'hono';
import type { FunctionEnv } from '../../shared/app';
import type { AuthEnv } from '../../shared/auth';
import type { JobPosition, JobStore } from '../../shared/jobs/store';
import { badRequest } from '../../shared/problem';
import type { JobView } from './events';

const pageLimit = { default: 20, max: 100 };

/**
 * A page's cursor: the position of its last job, as 11 base64url characters of its creation time
 * (ms, 64-bit big-endian) followed by its id, which is base64url-safe already. Opaque to clients;
 * every string of that shape is a position, so a cursor is either well-formed or a 400.
 */
export function encodeCursor({ createdAt, id }: JobPosition): string {
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(createdAt.getTime()));
  return time.toString('base64url') + id;
}

const latestDate = 8.64e15; // the largest time a Date holds

export function decodeCursor(cursor: string): JobPosition | undefined {
  if (!/^[A-Za-z0-9_-]{12,75}$/.test(cursor)) return undefined;
  const ms = Number(Buffer.from(cursor.slice(0, 11), 'base64url').readBigUInt64BE());
  return { createdAt: new Date(Math.min(ms, latestDate)), id: cursor.slice(11) };
}

function limitOf(value: string | undefined): number {
  if (value === undefined) return pageLimit.default;
  const n = /^[0-9]{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= pageLimit.max)) throw badRequest(`limit must be a whole number from 1 to ${pageLimit.max}.`);
  return n;
}

/**
 * `GET /jobs`: the caller's jobs, newest first, `limit` at a time; `nextCursor` (present while
 * there are more) gives the next page as `?cursor=`. Mounted behind app.ts's Bearer
 * authentication of `/jobs/*`.
 */
export function jobList(jobs: JobStore, view: JobView) {
  const app = new Hono<FunctionEnv & AuthEnv>();

  app.get('/jobs', async (c) => {
    const limit = limitOf(c.req.query('limit'));
    const cursor = c.req.query('cursor');
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (cursor !== undefined && !after) throw badRequest('cursor must be a nextCursor this list gave.');
    // One more than shown: whether there is a next page, without a count.
    const found = await jobs.listByOwner(c.get('user').id, limit + 1, after);
    const page = found.slice(0, limit);
    const last = page.at(-1);
    c.header('cache-control', 'no-store');
    return c.json({
      jobs: await Promise.all(page.map(view)),
      ...(found.length > limit && last && { nextCursor: encodeCursor(last) }),
    });
  });

  return app;
}
