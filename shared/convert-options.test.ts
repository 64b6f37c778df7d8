import { describe, expect, it } from 'vitest';
import { BadOption, parseOptionFields } from './convert-options';

const parse = (fields: Record<string, string>) => parseOptionFields(new Map(Object.entries(fields)));
const refusal = (fields: Record<string, string>) => {
  try {
    parse(fields);
  } catch (err) {
    if (err instanceof BadOption) return { field: err.field, detail: err.message };
    throw err;
  }
  throw new Error('accepted');
};

describe('conversion options from form fields', () => {
  it('reads every option from its text', () => {
    expect(parse({ quality: '4', channels: 'mono', start: '1.5', end: '90', track: '2', loudness: '-16', cover: 'off' })).toEqual({
      quality: 4,
      channels: 'mono',
      start: 1.5,
      end: 90,
      track: 2,
      loudness: -16,
      cover: false,
    });
    expect(parse({ bitrate: '192', cover: 'on', loudness: 'off' })).toEqual({ bitrate: 192, cover: true });
    expect(parse({ quality: ' 0 ' })).toEqual({ quality: 0 });
    expect(parse({})).toEqual({});
  });

  it.each([
    [{ quality: '10' }, 'quality', 'a VBR quality from 0 (best) to 9'],
    [{ quality: '2.5' }, 'quality', 'a VBR quality'],
    [{ bitrate: '100' }, 'bitrate', 'one of 64, 96, 128, 160, 192, 256, 320'],
    [{ channels: '5.1' }, 'channels', 'mono or stereo'],
    [{ start: '-1' }, 'start', 'seconds from 0'],
    [{ start: '1e3' }, 'start', 'seconds from 0'],
    [{ end: '86401' }, 'end', 'seconds after start'],
    [{ track: '0' }, 'track', 'an audio track number from 1'],
    [{ loudness: '-80' }, 'loudness', 'from -70 to -5'],
    [{ loudness: '16' }, 'loudness', 'from -70 to -5'],
    [{ cover: 'yes' }, 'cover', 'on or off'],
    [{ speed: '2' }, 'speed', 'the options are quality, bitrate, channels, start, end, track, loudness, cover'],
    [{ start: '5', end: '2' }, 'end', 'end must be after start'],
    [{ start: '5', end: '5' }, 'end', 'end must be after start'],
    [{ quality: '2', bitrate: '128' }, 'bitrate', 'quality and bitrate exclude each other'],
  ])('refuses %j, naming %s', (fields, field, words) => {
    const { field: named, detail } = refusal(fields);
    expect(named).toBe(field);
    expect(detail).toContain(`"${field}"`);
    expect(detail).toContain(words);
  });
});
