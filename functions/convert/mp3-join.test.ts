import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ffmpegPath } from '../../test/media';
import { tempDir } from '../../test/support';
import { audioStart, readFrames, type Mp3Frame } from './mp3-frames';
import { crc16, joinMp3, NotJoinable } from './mp3-join';

const run = promisify(execFile);
const frameBytes = (bytes: Uint8Array, f: Mp3Frame) => Buffer.from(bytes.subarray(f.offset, f.offset + f.length));

/** An MP3 as convert's encodes write one: tagged, a Xing + LAME info frame first. */
async function encode(path: string, { channels = 2, sampleRate = 44100, seconds = 5 } = {}): Promise<Uint8Array> {
  const source = `sine=frequency=440:duration=${seconds}:sample_rate=${sampleRate}`;
  await run(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, '-ac', String(channels), '-c:a', 'libmp3lame', '-q:a', '2', '-fflags', '+bitexact', '-metadata', 'title=t', '-f', 'mp3', path]);
  return readFile(path);
}

describe('joinMp3', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });

  for (const channels of [1, 2]) {
    it(`rewrites the info frame for what it joined, both CRCs as ffmpeg computes them (${channels === 1 ? 'mono' : 'stereo'})`, async () => {
      const path = join(dir, `${channels}.mp3`);
      const whole = await encode(path, { channels });
      const frames = readFrames(whole, audioStart(whole));
      const audio = frames.length - 1;
      // Two pieces of one encode, cut where it is: the second's reservoir bytes are moved.
      const joined = await joinMp3(
        [
          { path, from: 0, count: 100 },
          { path, from: 100 },
        ],
        join(dir, `${channels}-joined.mp3`),
      );
      expect(joined.frames).toBe(audio);
      const out = await readFile(join(dir, `${channels}-joined.mp3`));
      // The first piece's ID3v2 tag, then the info frame and the audio frames.
      const start = audioStart(out);
      expect(start).toBeGreaterThan(0);
      expect(out.subarray(0, start)).toEqual(whole.subarray(0, audioStart(whole)));
      const outFrames = readFrames(out, start);
      expect(outFrames).toHaveLength(audio + 1);
      // Every frame but the last before the join is the encode's own.
      for (let i = 1; i <= audio; i++) if (i !== 100) expect(frameBytes(out, outFrames[i]!)).toEqual(frameBytes(whole, frames[i]!));
      const tag = out.indexOf('Xing', start);
      expect(tag).toBe(start + (channels === 1 ? 21 : 36));
      const view = Buffer.from(out);
      expect(view.readUInt32BE(tag + 8)).toBe(audio);
      expect(view.readUInt32BE(tag + 12)).toBe(out.length - start);
      expect(view.readUInt16BE(tag + 152)).toBe(crc16(out.subarray(start + outFrames[0]!.length)));
      // Whole, one piece: the audio is the encode's, and so is its music CRC.
      await joinMp3([{ path, from: 0 }], join(dir, `${channels}-again.mp3`));
      const again = await readFile(join(dir, `${channels}-again.mp3`));
      const originalTag = Buffer.from(whole).indexOf('Xing');
      expect(again.readUInt16BE(again.indexOf('Xing') + 152)).toBe(Buffer.from(whole).readUInt16BE(originalTag + 152));
      const zeroed = Buffer.from(out.subarray(start, start + 192));
      zeroed.writeUInt16BE(0, tag - start + 154);
      expect(view.readUInt16BE(tag + 154)).toBe(crc16(zeroed.subarray(0, 190)));
      if (channels === 2) {
        // The rule is ffmpeg's: its own info frame checks out by it.
        const original = Buffer.from(whole.subarray(audioStart(whole), audioStart(whole) + 192));
        const at = original.indexOf('Xing');
        const stored = original.readUInt16BE(at + 154);
        original.writeUInt16BE(0, at + 154);
        expect(stored).toBe(crc16(original.subarray(0, 190)));
      }
      expect(joined.samples).toBe(audio * 1152 - (view.readUIntBE(tag + 141, 3) >> 12) - (view.readUIntBE(tag + 141, 3) & 0xfff));
    });
  }

  it('refuses what it cannot join, so the caller encodes in one pass', async () => {
    const out = join(dir, 'refused.mp3');
    const text = join(dir, 'text.mp3');
    await writeFile(text, 'not an mp3 at all');
    await expect(joinMp3([{ path: text, from: 0 }], out)).rejects.toThrow(NotJoinable);
    const lsf = join(dir, 'lsf.mp3');
    await encode(lsf, { sampleRate: 22050 }); // MPEG-2: 576-sample frames
    await expect(joinMp3([{ path: lsf, from: 0 }], out)).rejects.toThrow(NotJoinable);
    const short = join(dir, 'short.mp3');
    await encode(short, { seconds: 1 });
    await expect(joinMp3([{ path: short, from: 0, count: 10 }, { path: short, from: 500 }], out)).rejects.toThrow(NotJoinable);
  });
});
