import parseRange from 'range-parser';
import type { ByteRange } from '../../shared/media/store';

/**
 * The one byte range of a `size`-byte file that a `Range` header asks for, read as RFC 9110 §14
 * says: `'unsatisfiable'` (416), or undefined when the whole file is the answer (200): no
 * header, a malformed or invalid one, another unit, or several ranges (the whole file is a valid
 * answer to those, and saves a multipart/byteranges body).
 */
export function requestedRange(size: number, header: string | undefined): ByteRange | 'unsatisfiable' | undefined {
  // A zero-length file has no byte to point at; all of it (nothing) is the answer.
  if (!header || size === 0) return undefined;
  const equals = header.indexOf('=');
  if (equals === -1) return undefined;
  const specs = header.slice(equals + 1).split(',');
  // range-parser drops two kinds of range as unsatisfiable that RFC 9110 reads otherwise: an
  // int-range whose last byte comes before its first is invalid, and a header with an invalid
  // range is ignored (§14.1.1, §14.2); a suffix longer than the file means all of it (§14.1.2).
  if (specs.some(isBackwards)) return undefined;
  const read = `${header.slice(0, equals)}=${specs.map((spec) => (suffixLength(spec) > size ? '0-' : spec)).join(',')}`;

  const ranges = parseRange(size, read, { combine: true });
  if (ranges === -2) return undefined; // malformed: ignored
  if (ranges === -1) return 'unsatisfiable';
  if (ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  return ranges[0];
}

function isBackwards(spec: string): boolean {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(spec);
  return !!m && Number(m[2]) < Number(m[1]);
}

function suffixLength(spec: string): number {
  const m = /^\s*-\s*(\d+)\s*$/.exec(spec);
  return m ? Number(m[1]) : -1;
}
