import * as z from 'zod/mini';

/**
 * What an uploader may ask of the conversion, as form fields beside the file. Upload checks
 * them and puts them in `video.uploaded`; convert checks them again (an event is a claim).
 */
export interface ConvertOptions {
  /** LAME VBR quality, 0 (best) to 9 (smallest). */
  quality?: number;
  /** Constant bit rate in kbit/s instead of VBR; one of `bitrates`. */
  bitrate?: (typeof bitrates)[number];
  channels?: 'mono' | 'stereo';
  /** Seconds into the audio to start and end; `end` > `start`. */
  start?: number;
  end?: number;
  /** Which audio track, counted from 1 in the container's order. */
  track?: number;
  /** Target integrated loudness in LUFS (two-pass loudnorm, -1 dBTP); absent: no normalisation. */
  loudness?: number;
  /** A frame of the video as cover art (the default); false: none. */
  cover?: boolean;
}

/** MPEG-1 Layer III rates (kbit/s) worth offering: below 64 stereo is poor, 320 is the top. */
export const bitrates = [64, 96, 128, 160, 192, 256, 320] as const;
export const optionNames = ['quality', 'bitrate', 'channels', 'start', 'end', 'track', 'loudness', 'cover'] as const;
export type OptionName = (typeof optionNames)[number];

const seconds = z.number().check(z.gte(0), z.lte(24 * 3600));

export const convertOptionsSchema = z
  .object({
    quality: z.optional(z.int().check(z.gte(0), z.lte(9))),
    bitrate: z.optional(z.union(bitrates.map((b) => z.literal(b)))),
    channels: z.optional(z.enum(['mono', 'stereo'])),
    start: z.optional(seconds),
    end: z.optional(seconds),
    track: z.optional(z.int().check(z.gte(1), z.lte(64))),
    loudness: z.optional(z.number().check(z.gte(-70), z.lte(-5))),
    cover: z.optional(z.boolean()),
  })
  .check(
    z.refine((o) => o.quality === undefined || o.bitrate === undefined, { message: 'quality and bitrate exclude each other', path: ['bitrate'] }),
    z.refine((o) => o.end === undefined || o.end > (o.start ?? 0), { message: 'end must be after start', path: ['end'] }),
  );

/** How each form field's text is read (undefined: refused), and what to tell a client that got it wrong. */
const fieldRules: Record<OptionName, { parse: (text: string) => unknown; expects: string }> = {
  quality: { parse: (t) => (/^\d$/.test(t) ? Number(t) : undefined), expects: 'a VBR quality from 0 (best) to 9' },
  bitrate: { parse: (t) => (bitrates.map(String).includes(t) ? Number(t) : undefined), expects: `a bit rate in kbit/s, one of ${bitrates.join(', ')}` },
  channels: { parse: (t) => (t === 'mono' || t === 'stereo' ? t : undefined), expects: 'mono or stereo' },
  start: { parse: (t) => decimal(t, 24 * 3600), expects: 'seconds from 0, e.g. 12.5' },
  end: { parse: (t) => decimal(t, 24 * 3600), expects: 'seconds after start, e.g. 90' },
  track: { parse: (t) => (/^[1-9]\d?$/.test(t) && Number(t) <= 64 ? Number(t) : undefined), expects: 'an audio track number from 1' },
  loudness: { parse: (t) => (t === 'off' ? 'off' : /^-\d{1,2}(?:\.\d)?$/.test(t) && Number(t) >= -70 && Number(t) <= -5 ? Number(t) : undefined), expects: 'off, or a target in LUFS from -70 to -5, e.g. -16' },
  cover: { parse: (t) => (t === 'on' ? true : t === 'off' ? false : undefined), expects: 'on or off' },
};

function decimal(text: string, max: number): number | undefined {
  if (!/^\d{1,5}(?:\.\d{1,3})?$/.test(text)) return undefined;
  const value = Number(text);
  return value <= max ? value : undefined;
}

export class BadOption extends Error {
  constructor(readonly field: string, detail: string) {
    super(detail);
    this.name = 'BadOption';
  }
}

/** Form fields (text) → options; throws `BadOption` naming the first field that is wrong. */
export function parseOptionFields(fields: ReadonlyMap<string, string>): ConvertOptions {
  const options: Record<string, unknown> = {};
  for (const [name, text] of fields) {
    const rule = fieldRules[name as OptionName];
    if (!rule) throw new BadOption(name, `"${name}" is not an option; the options are ${optionNames.join(', ')}.`);
    const value = rule.parse(text.trim());
    if (value === undefined) throw new BadOption(name, `"${name}" must be ${rule.expects}.`);
    if (value !== 'off') options[name] = value;
  }
  const checked = convertOptionsSchema.safeParse(options);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    const field = String(issue.path[0] ?? 'options');
    throw new BadOption(field, `"${field}": ${issue.message}.`);
  }
  return checked.data as ConvertOptions;
}
