import type { Logger } from '../../shared/log';
import type { MediaStore } from '../../shared/media/store';
import { Problem } from '../../shared/problem';
import { envelopeBytes, tooLarge } from './multipart';

/** `MAX_STORED_BYTES_PER_USER` unless set: 5 GiB. */
export const defaultQuotaBytes = 5 * 1024 ** 3;

/** What one upload may store, decided before its body is read. */
export interface Room {
  /** What the user stored when the upload began (videos and MP3s). */
  storedBytes: number;
  /** The largest file this upload may be: the size limit or what is left of the quota, the smaller. */
  maxFileBytes: number;
  /** Whether `maxFileBytes` is the quota's (what is left of it is below the size limit). */
  byQuota: boolean;
  /** The request's Content-Length; 0 when it has none. */
  declaredBytes: number;
}

export interface QuotaOptions {
  media: MediaStore;
  quotaBytes: number;
  maxUploadBytes: number;
  /** Where a job is deleted, `{id}` standing for its id (named in the refusal). */
  deleteUrl: string;
}

/**
 * The per-user storage quota (`MAX_STORED_BYTES_PER_USER`): what a user stores (uploaded videos
 * not yet converted and deleted, and MP3s until they expire or the job is deleted) plus the
 * upload may not exceed it. Checked before the body is read (stored bytes, and a declared
 * Content-Length), then while it streams (the file may be at most what is left). Every refusal is
 * a 413 problem with the sizes in words and in bytes (`storedBytes`, `quotaBytes`).
 *
 * Like the upload counts (limits.ts), it is a bound, not an exact ledger: parallel uploads of one
 * user each see what was stored when they began, so together (at most `MAX_UPLOADS_IN_FLIGHT`)
 * they may go past the quota by what the others stored meanwhile; the next upload is refused.
 */
export function storageQuota({ media, quotaBytes, maxUploadBytes, deleteUrl }: QuotaOptions) {
  const refuse = (log: Logger, userId: string, storedBytes: number, reason: string, detail: string, more: Record<string, number> = {}) => {
    log.warn('upload quota reached', { userId, limit: 'MAX_STORED_BYTES_PER_USER', reason, storedBytes, quotaBytes, ...more });
    return new Problem({
      status: 413,
      title: 'Content Too Large',
      detail: `${detail}; delete a job (DELETE ${deleteUrl}) or wait until MP3s expire. Nothing was stored.`,
      extensions: { storedBytes, quotaBytes },
    });
  };
  const overSizeLimit = (declaredBytes: number) => declaredBytes > maxUploadBytes + envelopeBytes;
  const of = (storedBytes: number) => `of your ${formatBytes(quotaBytes)} quota (you store ${formatBytes(storedBytes)})`;

  return {
    /**
     * Before the body is read: how large the file of this upload may be, or a 413 when the user
     * is at the quota already or `declaredBytes` (the request's Content-Length, 0 when absent)
     * cannot fit. A store that cannot count → 503 with `Retry-After`.
     */
    async admit(log: Logger, userId: string, declaredBytes: number): Promise<Room> {
      let storedBytes: number;
      try {
        storedBytes = await media.storedBytes(userId);
      } catch (err) {
        log.error('stored bytes not counted; upload refused', { userId, err });
        throw new Problem({
          status: 503,
          title: 'Service Unavailable',
          detail: 'Your storage could not be counted; nothing was stored. Try again shortly.',
          headers: { 'retry-after': '30' },
        });
      }
      if (storedBytes >= quotaBytes) {
        throw refuse(log, userId, storedBytes, 'full', `You store ${formatBytes(storedBytes)} of your ${formatBytes(quotaBytes)} quota`);
      }
      const left = quotaBytes - storedBytes;
      // Over the size limit by its length alone is that limit's answer (receiveOneFile's): no deletion helps it.
      if (declaredBytes > left + envelopeBytes && !overSizeLimit(declaredBytes)) {
        const detail = `This upload is ${formatBytes(declaredBytes, 'up')}, more than the ${formatBytes(left)} left ${of(storedBytes)}`;
        throw refuse(log, userId, storedBytes, 'content-length', detail, { declaredBytes });
      }
      return { storedBytes, maxFileBytes: Math.min(maxUploadBytes, left), byQuota: left < maxUploadBytes, declaredBytes };
    },

    /**
     * The error an upload held to `room` ends with: a 413 for going past `room.maxFileBytes`
     * while streaming is the quota's when the quota was the tighter limit; one for a length over
     * the size limit is that limit's. The file is removed by then (`receiveOneFile` discards
     * what went over before it throws).
     */
    explain(err: unknown, log: Logger, userId: string, room: Room): unknown {
      if (!(err instanceof Problem && err.status === 413 && room.byQuota)) return err;
      if (overSizeLimit(room.declaredBytes)) return tooLarge(maxUploadBytes);
      const detail = `The file is larger than the ${formatBytes(room.maxFileBytes)} left ${of(room.storedBytes)}`;
      return refuse(log, userId, room.storedBytes, 'streamed', detail);
    },
  };
}

const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/**
 * A size in words with three significant digits: `512 bytes`, `41.5 MiB`, `5 GiB` (binary units,
 * as the limits are set). Cut rather than rounded by default, so that what is stored or left is
 * never shown as more than it is (4.999 GiB stored of 5 GiB reads `4.99 GiB`, not `5 GiB`);
 * `'up'` rounds up instead (what an upload needs is never shown as less).
 */
export function formatBytes(bytes: number, round: 'down' | 'up' = 'down'): string {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const decimals = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  const scale = 10 ** decimals;
  // The epsilon keeps binary fractions of exact values (5.1 × 100 = 509.999…) from losing a digit.
  let shown = round === 'up' ? Math.ceil(value * scale - 1e-9) / scale : Math.floor(value * scale + 1e-9) / scale;
  if (shown >= 1024 && unit < units.length - 1) {
    shown = 1; // 1023.6 KiB rounded up
    unit++;
  }
  const text = shown.toFixed(decimals);
  return `${decimals > 0 ? text.replace(/\.?0+$/, '') : text} ${units[unit]}`;
}
