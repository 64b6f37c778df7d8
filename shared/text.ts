/**
 * A user's text (a file name) made safe to show where it becomes a header, an email subject or
 * a tag: control characters (C0, DEL, C1, line and paragraph separators) and bidirectional
 * formatting characters are removed; everything else, any script, is kept as it is.
 */
const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

export function displayText(text: string): string {
  return text.normalize('NFC').replace(unsafe, '').trim();
}
