/**
 * The upload form's Options panel: the fields it sends, the count of them in its summary, its
 * reset, and the control marked when upload refuses a field.
 */
import { $ } from './dom';

const controls = {
  quality: $<HTMLSelectElement>('opt-quality'),
  channels: $<HTMLSelectElement>('opt-channels'),
  start: $<HTMLInputElement>('opt-start'),
  end: $<HTMLInputElement>('opt-end'),
  track: $<HTMLInputElement>('opt-track'),
  normalise: $<HTMLInputElement>('opt-normalise'),
  loudness: $<HTMLInputElement>('opt-loudness'),
  cover: $<HTMLInputElement>('opt-cover'),
};

/** Upload's field names, and the control that sets each. */
const controlOf = new Map<string, HTMLElement>([
  ['quality', controls.quality],
  ['bitrate', controls.quality],
  ['channels', controls.channels],
  ['start', controls.start],
  ['end', controls.end],
  ['track', controls.track],
  ['loudness', controls.loudness],
  ['cover', controls.cover],
]);

/** The option fields the person set, as upload reads them. What is left at its default is not sent. */
export function optionFields(): [string, string][] {
  const fields: [string, string][] = [];
  const text = (input: HTMLInputElement) => input.value.trim();
  // The quality select's values are "quality:N" or "bitrate:N": the two exclude each other.
  const [rate, value] = controls.quality.value.split(':');
  if (rate && value) fields.push([rate, value]);
  if (controls.channels.value) fields.push(['channels', controls.channels.value]);
  if (text(controls.start)) fields.push(['start', seconds(text(controls.start))]);
  if (text(controls.end)) fields.push(['end', seconds(text(controls.end))]);
  if (text(controls.track)) fields.push(['track', text(controls.track)]);
  if (controls.normalise.checked) fields.push(['loudness', lufs(text(controls.loudness))]);
  if (!controls.cover.checked) fields.push(['cover', 'off']);
  return fields;
}

/** "1:30" → "90", "1:02:05" → "3725", "12,5" → "12.5"; anything else as typed, for upload to judge. */
function seconds(typed: string): string {
  const text = typed.replace(',', '.');
  const clock = /^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(text);
  if (!clock) return text;
  const [, hours = '0', mins = '0', secs = '0'] = clock;
  return String(Math.round((Number(hours) * 3600 + Number(mins) * 60 + Number(secs)) * 1000) / 1000);
}

/** A loudness target: empty is -16; "16" or "−16" (a typographic minus) mean -16, as targets are below 0. */
function lufs(typed: string): string {
  const text = typed.replace(/^[\u2212\u2013]/, '-');
  if (text === '') return '-16';
  return /^\d/.test(text) ? `-${text}` : text;
}

function showCount() {
  const count = optionFields().length;
  $('options-count').textContent = count > 0 ? `(${count} set)` : '';
}

function reset() {
  controls.quality.value = controls.channels.value = '';
  controls.start.value = controls.end.value = controls.track.value = '';
  controls.normalise.checked = false;
  controls.loudness.value = '-16';
  controls.loudness.disabled = true;
  controls.cover.checked = true;
  clearInvalid();
  showCount();
}

/** Wires the panel, and shows it as it is: a reload may bring back what the options were set to. */
export function setUpOptions() {
  $('options').addEventListener('input', showCount);
  $('options').addEventListener('change', showCount);
  controls.normalise.addEventListener('change', () => {
    controls.loudness.disabled = !controls.normalise.checked;
  });
  $('options-reset').addEventListener('click', reset);
  controls.loudness.disabled = !controls.normalise.checked;
  showCount();
}

/** A 400 names the field it refused (`"end": …`): the panel opens on that control, marked and described by the problem. */
export function markInvalid(problem: string) {
  const field = /^"(\w+)"/.exec(problem)?.[1];
  const control = field === undefined ? undefined : controlOf.get(field);
  if (!control) return;
  $<HTMLDetailsElement>('options').open = true;
  control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-errormessage', 'problem');
  control.focus();
}

export function clearInvalid() {
  for (const control of controlOf.values()) {
    control.removeAttribute('aria-invalid');
    control.removeAttribute('aria-errormessage');
  }
}
