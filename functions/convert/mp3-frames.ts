/**
 * MPEG-1 Layer III frames, read as far as joining encodes needs: where each frame is, how long,
 * and where its main data lies in the bit reservoir (ISO/IEC 11172-3, 2.4.1.3 and 2.4.1.7).
 */

const bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]; // kbit/s, index 15 is invalid
const sampleRates = [44100, 48000, 32000];
export const samplesPerFrame = 1152;

export interface Mp3Frame {
  /** Offset of the frame's header in its file. */
  offset: number;
  /** Header, CRC, side info and data area. */
  length: number;
  /** Header, CRC and side info: the data area starts here, from `offset`. */
  headerLength: number;
  bitrateIndex: number;
  padding: boolean;
  sampleRate: number;
  channels: 1 | 2;
  crc: boolean;
  /** Bytes before this frame's data area where its main data starts. */
  mainDataBegin: number;
  /** Bits of main data (part2_3_length, summed over granules and channels). */
  mainDataBits: number;
}

/** The header at `at`, when it is a valid MPEG-1 Layer III one. */
function header(bytes: Uint8Array, at: number) {
  if (at + 4 > bytes.length || bytes[at] !== 0xff || (bytes[at + 1]! & 0xfe) !== 0xfa) return undefined; // sync, MPEG-1, Layer III
  const bitrateIndex = bytes[at + 2]! >> 4;
  const rateIndex = (bytes[at + 2]! >> 2) & 3;
  if (bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) return undefined; // free format is not for us
  const sampleRate = sampleRates[rateIndex]!;
  const padding = (bytes[at + 2]! & 2) !== 0;
  const channels = bytes[at + 3]! >> 6 === 3 ? 1 : 2;
  const crc = (bytes[at + 1]! & 1) === 0;
  return { bitrateIndex, sampleRate, padding, channels: channels as 1 | 2, crc, length: frameLength(bitrateIndex, sampleRate, padding) };
}

export const frameLength = (bitrateIndex: number, sampleRate: number, padding: boolean) =>
  Math.floor((144_000 * bitrates[bitrateIndex]!) / sampleRate) + (padding ? 1 : 0);

export const sideInfoLength = (channels: 1 | 2) => (channels === 1 ? 17 : 32);

/** Reads `count` bits from `bytes` starting at bit `bit` (big-endian). */
function bits(bytes: Uint8Array, bit: number, count: number): number {
  let value = 0;
  for (let i = 0; i < count; i++) value = (value << 1) | ((bytes[(bit + i) >> 3]! >> (7 - ((bit + i) & 7))) & 1);
  return value;
}

/**
 * Every frame from `start`, one after the other, until the bytes stop being frames (an ID3v1
 * tag, the end). Throws when there is no frame at `start`.
 */
export function readFrames(bytes: Uint8Array, start = 0): Mp3Frame[] {
  const frames: Mp3Frame[] = [];
  for (let at = start; ; ) {
    const h = header(bytes, at);
    if (!h || at + h.length > bytes.length) break;
    const side = at + 4 + (h.crc ? 2 : 0);
    const granuleBits = 59; // part2_3_length (12) … count1table_select: the same size for every block type
    const first = side * 8 + 9 + (h.channels === 1 ? 5 : 3) + 4 * h.channels; // after main_data_begin, private bits, scfsi
    let mainDataBits = 0;
    for (let i = 0; i < 2 * h.channels; i++) mainDataBits += bits(bytes, first + i * granuleBits, 12);
    frames.push({
      offset: at,
      length: h.length,
      headerLength: side - at + sideInfoLength(h.channels),
      bitrateIndex: h.bitrateIndex,
      padding: h.padding,
      sampleRate: h.sampleRate,
      channels: h.channels,
      crc: h.crc,
      mainDataBegin: bits(bytes, side * 8, 9),
      mainDataBits,
    });
    at += h.length;
  }
  if (frames.length === 0) throw new Error(`no MPEG-1 Layer III frame at byte ${start}`);
  return frames;
}

/** Where the audio starts: after an ID3v2 tag, if any. */
export function audioStart(bytes: Uint8Array): number {
  if (bytes.length < 10 || bytes[0] !== 0x49 || bytes[1] !== 0x44 || bytes[2] !== 0x33) return 0; // "ID3"
  const size = ((bytes[6]! & 0x7f) << 21) | ((bytes[7]! & 0x7f) << 14) | ((bytes[8]! & 0x7f) << 7) | (bytes[9]! & 0x7f);
  return 10 + size + ((bytes[5]! & 0x10) !== 0 ? 10 : 0); // a footer, when flagged
}

/** Offset of "Xing" or "Info" in `frame` when it is the info frame ffmpeg and LAME write first. */
export function infoTagAt(bytes: Uint8Array, frame: Mp3Frame): number | undefined {
  const at = frame.offset + frame.headerLength;
  const tag = String.fromCharCode(...bytes.subarray(at, at + 4));
  return tag === 'Xing' || tag === 'Info' ? at : undefined;
}
