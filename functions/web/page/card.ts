/**
 * A job's card in the list: its name and state, the options it was converted with, how long its
 * MP3 is kept, its conversion bar, its player, and its actions. Rendered again, in place, whenever
 * the job changes.
 */
import { endpoints } from './config';
import type { JobView } from './types';

/** What Delete does; the card only draws the button. */
export type OnDelete = (job: JobView, button: HTMLButtonElement) => void;

export function card(job: JobView, onDelete: OnDelete): HTMLLIElement {
  const item = document.createElement('li');
  item.id = `job-${job.id}`;
  fill(item, job, onDelete);
  return item;
}

export function fill(item: HTMLElement, job: JobView, onDelete: OnDelete) {
  const parts: HTMLElement[] = [cardHead(job)];
  const summary = optionsSummary(job);
  if (summary) parts.push(paragraph('options-summary', summary));
  const kept = retention(job);
  if (kept) parts.push(kept);
  if (job.status === 'converting' || job.status === 'uploaded') parts.push(conversionBar(job));
  const playable = job.status === 'converted' && !job.expired && job.signedUrl;
  if (playable) parts.push(player(job, playable));
  if (job.status === 'converted' || job.status === 'failed') parts.push(actions(job, playable, onDelete));
  item.replaceChildren(...parts);
}

const stateText = (job: JobView) =>
  ({
    uploaded: 'Waiting for its turn',
    converting: `Converting: ${Math.floor(job.progress?.percent ?? 0)} %`,
    converted: job.expired ? 'Expired' : `Ready${job.mp3 ? ` · ${clock(Math.round(job.mp3.durationSeconds))}` : ''}`,
    failed: `Could not convert: ${job.error ?? 'no reason was given'}`,
  })[job.status];

/** 90 → "1:30", 3725 → "1:02:05", 0.5 → "0:00.5". */
function clock(seconds: number): string {
  const whole = Math.floor(seconds);
  const fraction = Math.round((seconds - whole) * 1000) / 1000;
  const [h, m, s] = [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), whole % 60];
  const secs = `${String(s).padStart(2, '0')}${fraction > 0 ? String(fraction).slice(1) : ''}`;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${secs}` : `${m}:${secs}`;
}

const shownTime = (iso: string) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** The options a job was converted with that differ from the defaults, e.g. "Trimmed 0:05–1:30 · Mono · −16 LUFS". */
function optionsSummary(job: JobView): string {
  const o = job.options ?? {};
  const track = job.mp3?.audioTrack ?? o.track;
  const trimmed = o.start !== undefined || o.end !== undefined;
  return [
    trimmed && `Trimmed ${clock(o.start ?? 0)}–${o.end === undefined ? 'end' : clock(o.end)}`,
    o.quality !== undefined && `VBR quality ${o.quality}`,
    o.bitrate !== undefined && `CBR ${o.bitrate} kbit/s`,
    o.channels === 'mono' && 'Mono',
    o.channels === 'stereo' && 'Stereo',
    track !== undefined && (track > 1 || o.track !== undefined) && `Track ${track}`,
    o.loudness !== undefined && `${o.loudness < 0 ? '\u2212' : ''}${Math.abs(o.loudness)} LUFS`,
    o.cover === false && 'No cover art',
  ]
    .filter(Boolean)
    .join(' · ');
}

/** How long the MP3 is kept, or when it was deleted; nothing before it is converted. */
function retention(job: JobView): HTMLElement | undefined {
  if (job.status !== 'converted' || (!job.expiresAt && !job.expired)) return undefined;
  const line = document.createElement('p');
  line.className = job.expired ? 'retention expired' : 'retention';
  line.textContent = job.expired ? 'Expired: the MP3 was deleted' : 'Kept until ';
  if (job.expiresAt) {
    const time = document.createElement('time');
    time.dateTime = job.expiresAt;
    time.textContent = shownTime(job.expiresAt);
    line.append(job.expired ? ' on ' : '', time);
  }
  if (job.expired) line.append('. Upload the video again for a new one.');
  return line;
}

function paragraph(className: string, text: string): HTMLParagraphElement {
  const p = document.createElement('p');
  p.className = className;
  p.textContent = text;
  return p;
}

function cardHead(job: JobView): HTMLElement {
  const head = document.createElement('div');
  head.className = 'job-head';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = job.filename;
  const state = document.createElement('span');
  state.className = `state state-${job.expired ? 'expired' : job.status}`;
  state.textContent = stateText(job);
  head.append(name, state);
  return head;
}

function conversionBar(job: JobView): HTMLProgressElement {
  const bar = document.createElement('progress');
  bar.max = 100;
  bar.value = job.progress?.percent ?? 0;
  bar.setAttribute('aria-label', `Conversion of ${job.filename}`);
  return bar;
}

function player(job: JobView, signedUrl: string): HTMLAudioElement {
  const audio = document.createElement('audio');
  audio.controls = true;
  audio.preload = 'metadata';
  audio.src = new URL(signedUrl, endpoints.download).href;
  audio.setAttribute('aria-label', `Play ${job.filename}`);
  return audio;
}

/** A settled job's row of actions: its download link (while there is an MP3) and Delete. */
function actions(job: JobView, signedUrl: string | false | undefined, onDelete: OnDelete): HTMLElement {
  const row = document.createElement('div');
  row.className = 'job-actions';
  if (signedUrl) {
    const link = document.createElement('a');
    link.href = new URL(signedUrl, endpoints.download).href;
    link.textContent = 'Download the MP3';
    link.setAttribute('download', '');
    row.append(link);
  }
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'delete';
  remove.textContent = 'Delete';
  remove.setAttribute('aria-label', `Delete ${job.filename}`);
  remove.addEventListener('click', () => onDelete(job, remove));
  row.append(remove);
  return row;
}
