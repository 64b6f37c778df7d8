import { describe, expect, it } from 'vitest';
import { displayText } from './text';

describe('displayText', () => {
  it('keeps any script and punctuation as it is', () => {
    expect(displayText("Fête d'été — 2026.mov")).toBe("Fête d'été — 2026.mov");
    expect(displayText('会議の録音.mp4')).toBe('会議の録音.mp4');
  });

  it('removes line breaks, other control characters and bidi overrides', () => {
    expect(displayText('a\r\nBcc: x@example.com.mp4')).toBe('aBcc: x@example.com.mp4');
    expect(displayText('invoice\u202Egpj.exe')).toBe('invoicegpj.exe');
    expect(displayText('\u0000\u0085x\u2028y\u2066\u200f')).toBe('xy');
  });

  it('composes decomposed accents (NFC), as macOS file names come', () => {
    expect(displayText('Cafe\u0301')).toBe('Café');
  });
});
