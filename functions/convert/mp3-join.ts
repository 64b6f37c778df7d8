/**
 * Joins MP3s encoded in parallel from overlapping stretches of one audio into the MP3 a single
 * encode would have made: each piece's frames sit on the same 1152-sample grid, so joining is
 * choosing whose frame each slot gets, then mending the two things frames share across a join:
 *
 * - the bit reservoir: a frame's main data may start up to 511 bytes back, in the data areas of
 *   the frames before it. The first frame kept from a piece points back into its own piece's
 *   frames, which the join drops; those bytes are moved to the end of the frame kept before it
 *   (made a bitrate step larger when they do not fit), where the decoder looks for them;
 * - the info frame (Xing and LAME tags): rewritten for the whole, with the first piece's encoder
 *   delay and the last piece's padding, a table of contents and both CRCs.
 *
 * The first piece's ID3v2 tag is the whole's.
 */
import { open, readFile } from 'node:fs/promises';
import { audioStart, frameLength, infoTagAt, readFrames, samplesPerFrame, type Mp3Frame } from './mp3-frames';

export interface Piece {
  /** The MP3 file one encode wrote (its info frame first). */
  path: string;
  /** Index among its audio frames (the info frame not counted) of the first frame kept. */
  from: number;
  /** Audio frames kept; the rest to its end when absent. */
  count?: number;
}

export interface Joined {
  frames: number;
  /** Samples a gapless decoder plays: frames less the encoder delay and the padding. */
  samples: number;
  sampleRate: number;
}

/** Cannot be joined (an encode of an unexpected shape): the caller encodes in one pass instead. */
export class NotJoinable extends Error {}

interface Parsed {
  bytes: Uint8Array;
  info: Mp3Frame;
  tagAt: number;
  frames: Mp3Frame[];
  /** Start of each audio frame's data area in the piece's reservoir stream (data areas end to end). */
  areaStart: number[];
}

function parse(bytes: Uint8Array): Parsed {
  let all: Mp3Frame[];
  try {
    all = readFrames(bytes, audioStart(bytes));
  } catch (err) {
    throw new NotJoinable((err as Error).message);
  }
  const info = all[0]!;
  const tagAt = infoTagAt(bytes, info);
  if (tagAt === undefined) throw new NotJoinable('the encode has no info frame');
  // Flags 15: frames, bytes, TOC and quality, then the LAME tag: what ffmpeg writes.
  if (readUint32(bytes, tagAt + 4) !== 15 || info.length < tagAt - info.offset + 156) throw new NotJoinable('the info frame is not the expected Xing + LAME tag');
  const frames = all.slice(1);
  if (frames.some((f) => f.crc || f.sampleRate !== info.sampleRate || f.channels !== info.channels)) throw new NotJoinable('the frames are not alike');
  const areaStart: number[] = [];
  let position = 0;
  for (const frame of frames) {
    areaStart.push(position);
    position += frame.length - frame.headerLength;
  }
  return { bytes, info, tagAt, frames, areaStart };
}

/** The bytes [from, to) of a piece's reservoir stream. */
function reservoir(piece: Parsed, from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from);
  piece.frames.forEach((frame, i) => {
    const start = piece.areaStart[i]!;
    const end = start + frame.length - frame.headerLength;
    const lo = Math.max(from, start);
    const hi = Math.min(to, end);
    if (lo < hi) out.set(piece.bytes.subarray(frame.offset + frame.headerLength + lo - start, frame.offset + frame.headerLength + hi - start), lo - from);
  });
  return out;
}

/** How many bytes before frame `first`'s data area the frames from `first` on read. */
function bytesNeededBefore(piece: Parsed, first: number): number {
  const start = piece.areaStart[first]!;
  let need = 0;
  for (let i = first; i < piece.frames.length && piece.areaStart[i]! - 511 < start; i++) {
    need = Math.max(need, start - (piece.areaStart[i]! - piece.frames[i]!.mainDataBegin));
  }
  return need;
}

/**
 * Frame `last` of `piece`, its data area cut after its own main data and `tail` put at its end:
 * the same frame to a decoder, and the bytes the next frame reads back are `tail`. Undefined
 * when even the largest frame cannot hold both.
 */
function withTail(piece: Parsed, last: number, tail: Uint8Array): Uint8Array | undefined {
  const frame = piece.frames[last]!;
  const ownEnd = piece.areaStart[last]! - frame.mainDataBegin + Math.ceil(frame.mainDataBits / 8);
  const own = Math.max(0, ownEnd - piece.areaStart[last]!);
  for (let index = frame.bitrateIndex; index <= 14; index++) {
    for (const padding of index === frame.bitrateIndex ? [frame.padding] : [false, true]) {
      const length = frameLength(index, frame.sampleRate, padding);
      if (length - frame.headerLength < own + tail.length) continue;
      const out = new Uint8Array(length); // the gap between its data and the tail is zeros: ancillary data
      out.set(piece.bytes.subarray(frame.offset, frame.offset + frame.headerLength + own));
      out[2] = (index << 4) | (padding ? 2 : 0) | (out[2]! & 0x0d);
      out.set(tail, length - tail.length);
      return out;
    }
  }
  return undefined;
}

/**
 * The pieces' kept frames in order, behind one info frame, written to `output`. A join whose
 * moved bytes fit no frame moves one slot later (a frame more from the earlier piece, one fewer
 * from the later), up to `slack` slots: the pieces overlap by more than that. Two pieces are in
 * memory at a time, whatever the whole's length.
 */
export async function joinMp3(pieces: Piece[], output: string, { slack = 3 } = {}): Promise<Joined> {
  if (pieces.length === 0) throw new NotJoinable('nothing to join');
  const out = await open(output, 'w');
  try {
    let piece = parse(await readFile(pieces[0]!.path));
    const first = piece;
    // The first piece's ID3v2 tag (the others have none to speak of), then the info frame,
    // written last, when the whole is known.
    const tag = first.bytes.subarray(0, first.info.offset);
    await out.write(tag, 0, tag.length, 0);
    let at = tag.length + first.info.length;
    const sizes: number[] = [];
    let music = 0;
    let head = new Uint8Array(0); // the first audio bytes: the tag CRC may run into them
    const write = async (bytes: Uint8Array) => {
      await out.write(bytes, 0, bytes.length, at);
      at += bytes.length;
      music = crc16(bytes, music);
      if (head.length < 190) head = Uint8Array.from([...head, ...bytes.subarray(0, 190 - head.length)]);
    };
    let shift = 0; // slots the previous join moved later
    for (let k = 0; k < pieces.length; k++) {
      const from = pieces[k]!.from + shift;
      const end = pieces[k]!.count === undefined ? piece.frames.length : pieces[k]!.from + pieces[k]!.count!;
      if (end > piece.frames.length || from >= end) throw new NotJoinable(`piece ${k} has ${piece.frames.length} frames, ${end} wanted`);
      let last = end - 1;
      let tail: Uint8Array | undefined;
      const next = k + 1 < pieces.length ? parse(await readFile(pieces[k + 1]!.path)) : undefined;
      if (next) {
        for (shift = 0; shift <= slack && !tail; shift++) {
          const firstKept = pieces[k + 1]!.from + shift;
          if (firstKept >= next.frames.length || end + shift > piece.frames.length) break;
          last = end - 1 + shift;
          const need = bytesNeededBefore(next, firstKept);
          tail = withTail(piece, last, reservoir(next, next.areaStart[firstKept]! - need, next.areaStart[firstKept]!));
        }
        if (!tail) throw new NotJoinable(`no join found after piece ${k}`);
        shift--;
      }
      // Frames lie end to end in their file: the kept ones are one stretch of bytes.
      const start = piece.frames[from]!.offset;
      const stop = tail ? piece.frames[last]!.offset : piece.frames[last]!.offset + piece.frames[last]!.length;
      await write(piece.bytes.subarray(start, stop));
      for (let i = from; i < last; i++) sizes.push(piece.frames[i]!.length);
      if (tail) await write(tail);
      sizes.push(tail ? tail.length : piece.frames[last]!.length);
      if (next) piece = next;
    }
    const gaps = { delay: readUint24(first.bytes, first.tagAt + 141) >> 12, padding: readUint24(piece.bytes, piece.tagAt + 141) & 0xfff };
    const info = infoFrame(first, sizes, gaps, music, head);
    await out.write(info, 0, info.length, tag.length);
    return { frames: sizes.length, samples: sizes.length * samplesPerFrame - gaps.delay - gaps.padding, sampleRate: first.info.sampleRate };
  } finally {
    await out.close();
  }
}

/**
 * The first piece's info frame made the whole's: counts, table of contents, encoder delay (the
 * first piece's) and padding (the last's), music length, the music CRC `music` of the audio, and
 * the tag CRC: over the 190 bytes from the frame's start, its own field as zeros, as ffmpeg
 * computes it (a mono tag ends before byte 190, and its frame may too: the count goes on into
 * `head`, the first audio bytes).
 */
function infoFrame(first: Parsed, sizes: number[], gaps: { delay: number; padding: number }, music: number, head: Uint8Array): Uint8Array {
  const frame = Uint8Array.from(first.bytes.subarray(first.info.offset, first.info.offset + first.info.length)); // a copy (Buffer.slice is not)
  const tag = first.tagAt - first.info.offset;
  const audioBytes = sizes.reduce((a, b) => a + b, 0);
  const total = frame.length + audioBytes;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(tag + 8, sizes.length);
  view.setUint32(tag + 12, total);
  // Entry i: where the frame i% of the way in starts, in 256ths of the file.
  const offsets = [frame.length];
  for (const size of sizes) offsets.push(offsets.at(-1)! + size);
  for (let i = 0; i < 100; i++) frame[tag + 16 + i] = i === 0 ? 0 : Math.min(255, Math.floor((256 * offsets[Math.floor((i / 100) * sizes.length)]!) / total));
  const delayPadding = (gaps.delay << 12) | gaps.padding;
  frame[tag + 141] = delayPadding >> 16;
  frame[tag + 142] = (delayPadding >> 8) & 0xff;
  frame[tag + 143] = delayPadding & 0xff;
  view.setUint32(tag + 148, total);
  view.setUint16(tag + 152, music);
  view.setUint16(tag + 154, 0);
  view.setUint16(tag + 154, crc16(Uint8Array.from([...frame, ...head]).subarray(0, 190)));
  return frame;
}

/** CRC-16/ARC (polynomial 0x8005, reflected), the LAME tag's; `crc` carries on from earlier bytes. */
export function crc16(bytes: Uint8Array, crc = 0): number {
  // A byte at a time through a table: bit by bit, the music CRC of a 40-minute MP3 took a second.
  for (let i = 0, n = bytes.length; i < n; i++) crc = (crc >>> 8) ^ crcTable[(crc ^ bytes[i]!) & 0xff]!;
  return crc;
}

const crcTable = Uint16Array.from({ length: 256 }, (_, n) => {
  let crc = n;
  for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  return crc;
});

const readUint32 = (bytes: Uint8Array, at: number) => ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
const readUint24 = (bytes: Uint8Array, at: number) => (bytes[at]! << 16) | (bytes[at + 1]! << 8) | bytes[at + 2]!;
