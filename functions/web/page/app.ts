/**
 * The page's script, bundled for browsers (functions/web/assets.ts). No framework: a sign-in
 * form, an upload with a real progress bar and optional conversion options, and the caller's
 * jobs, each watched live over the download function's event stream until it is converted (a
 * player and a download link, and how long the MP3 is kept) or failed (its reason); a settled
 * job can be deleted. Every problem+json the API answers is shown as the person-readable text it
 * carries.
 */
interface Endpoints {
  login: string;
  upload: string;
  download: string;
}

/** What the uploader asked of the conversion (shared/convert-options.ts), as the job view has it. */
interface ConvertOptions {
  quality?: number;
  bitrate?: number;
  channels?: 'mono' | 'stereo';
  start?: number;
  end?: number;
  track?: number;
  loudness?: number;
  cover?: boolean;
}

interface JobView {
  id: string;
  status: 'uploaded' | 'converting' | 'converted' | 'failed';
  filename: string;
  createdAt: string;
  progress?: { percent: number };
  options?: ConvertOptions;
  mp3?: { durationSeconds: number; sizeBytes: number; audioTrack?: number };
  /** When the MP3 is (or was) deleted. */
  expiresAt?: string;
  /** The MP3 was deleted: there is nothing to play or download. */
  expired?: boolean;
  /** The owner's signed link: opens in any browser without a token. */
  signedUrl?: string;
  error?: string;
}

const endpoints = JSON.parse(document.getElementById('config')!.textContent!) as Endpoints;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const session = {
  get token() {
    return sessionStorage.getItem('earshot.token');
  },
  set token(value: string | null) {
    if (value) sessionStorage.setItem('earshot.token', value);
    else sessionStorage.removeItem('earshot.token');
  },
};

/** What a failed answer says to a person: a problem's detail (or title), else its status. */
async function problemText(res: Response): Promise<string> {
  let text = `The server answered ${res.status}.`;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    const problem = (await res.json().catch(() => ({}))) as { title?: string; detail?: string };
    text = problem.detail ?? problem.title ?? text;
  }
  const retry = res.headers.get('retry-after');
  return retry ? `${text} Try again in ${retry} s.` : text;
}

function showProblem(text: string | null) {
  const box = $('problem');
  box.textContent = text ?? '';
  box.hidden = !text;
}

async function api(url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${session.token}` } });
  if (res.status === 401) {
    signOut('Your session ended: sign in again.');
    throw new Error('signed out');
  }
  return res;
}

function render() {
  const signedIn = Boolean(session.token);
  $('sign-in').hidden = signedIn;
  $('work').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
}

function signOut(message: string | null = null) {
  session.token = null;
  watching.forEach((stop) => stop());
  watching.clear();
  $('jobs').replaceChildren();
  render();
  showProblem(message);
  $<HTMLInputElement>('email').focus();
}

$('sign-in').addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = $<HTMLInputElement>('email').value;
  const password = $<HTMLInputElement>('password').value;
  const basic = btoa(String.fromCharCode(...new TextEncoder().encode(`${email}:${password}`)));
  const res = await fetch(`${endpoints.login}/login`, { method: 'POST', headers: { authorization: `Basic ${basic}` } }).catch(() => null);
  if (!res) return showProblem('earshot cannot be reached. Check your connection and try again.');
  if (!res.ok) return showProblem(await problemText(res));
  session.token = ((await res.json()) as { token: string }).token;
  $<HTMLInputElement>('password').value = '';
  showProblem(null);
  render();
  $<HTMLInputElement>('file').focus();
  await loadJobs();
});

$('sign-out').addEventListener('click', () => signOut());

$('upload').addEventListener('submit', (event) => {
  event.preventDefault();
  const file = $<HTMLInputElement>('file').files?.[0];
  if (!file) return;
  clearInvalid();
  const form = new FormData();
  // The options before the file: upload checks them before it stores a byte of it.
  for (const [name, value] of optionFields()) form.append(name, value);
  form.append('file', file, file.name);
  send(form, file.name);
});

/** Sends an upload, with the bytes sent on the upload bar; once accepted, its job joins the list. */
function send(form: FormData, filename: string) {
  const bar = $<HTMLProgressElement>('upload-progress');
  const status = $('status');
  // XMLHttpRequest: fetch cannot report the bytes sent.
  const xhr = new XMLHttpRequest();
  xhr.open('POST', `${endpoints.upload}/upload`);
  xhr.setRequestHeader('authorization', `Bearer ${session.token}`);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
  };
  xhr.onerror = () => showProblem('The upload was cut off. Check your connection and try again.');
  xhr.onload = async () => {
    const res = new Response(xhr.responseText, { status: xhr.status, headers: { 'content-type': xhr.getResponseHeader('content-type') ?? '', 'retry-after': xhr.getResponseHeader('retry-after') ?? '' } });
    if (xhr.status === 401) return signOut('Your session ended: sign in again.');
    if (xhr.status !== 202) {
      bar.value = 0;
      status.textContent = '';
      const problem = await problemText(res);
      showProblem(problem);
      if (xhr.status === 400) markInvalid(problem);
      return;
    }
    showProblem(null);
    const { videoId } = JSON.parse(xhr.responseText) as { videoId: string };
    status.textContent = `${filename} uploaded; converting…`;
    // Only the file is cleared: the options stay as they are for the next upload.
    $<HTMLInputElement>('file').value = '';
    const job: JobView = { id: videoId, status: 'uploaded', filename, createdAt: new Date().toISOString() };
    $('jobs').prepend(card(job));
    $('no-jobs').hidden = true;
    watch(job.id);
  };
  showProblem(null);
  bar.value = 0;
  status.textContent = `Uploading ${filename}…`;
  xhr.send(form);
}

// The "Options" panel of the upload form.

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

/** The option fields the person set, as upload reads them. What is left at its default is not sent. */
function optionFields(): [string, string][] {
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

function showOptionsCount() {
  const count = optionFields().length;
  $('options-count').textContent = count > 0 ? `(${count} set)` : '';
}

$('options').addEventListener('input', showOptionsCount);
$('options').addEventListener('change', showOptionsCount);
controls.normalise.addEventListener('change', () => {
  controls.loudness.disabled = !controls.normalise.checked;
});
$('options-reset').addEventListener('click', () => {
  controls.quality.value = controls.channels.value = '';
  controls.start.value = controls.end.value = controls.track.value = '';
  controls.normalise.checked = false;
  controls.loudness.value = '-16';
  controls.loudness.disabled = true;
  controls.cover.checked = true;
  clearInvalid();
  showOptionsCount();
});

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

/** A 400 names the field it refused (`"end": …`): the panel opens on that control, marked and described by the problem. */
function markInvalid(problem: string) {
  const field = /^"(\w+)"/.exec(problem)?.[1];
  const control = field === undefined ? undefined : controlOf.get(field);
  if (!control) return;
  $<HTMLDetailsElement>('options').open = true;
  control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-errormessage', 'problem');
  control.focus();
}

function clearInvalid() {
  for (const control of controlOf.values()) {
    control.removeAttribute('aria-invalid');
    control.removeAttribute('aria-errormessage');
  }
}

let nextCursor: string | undefined;
$('more').addEventListener('click', () => void loadJobs(nextCursor));

async function loadJobs(cursor?: string) {
  const res = await api(`${endpoints.download}/jobs?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).catch(() => null);
  if (!res) return;
  if (!res.ok) return showProblem(await problemText(res));
  const page = (await res.json()) as { jobs: JobView[]; nextCursor?: string | null };
  for (const job of page.jobs) {
    $('jobs').append(card(job));
    if (job.status === 'uploaded' || job.status === 'converting') watch(job.id);
  }
  nextCursor = page.nextCursor ?? undefined;
  $('more').hidden = !nextCursor;
  $('no-jobs').hidden = $('jobs').children.length > 0;
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

/** A job's list item; rendered again, in place, whenever the job changes. */
function card(job: JobView): HTMLLIElement {
  const item = document.createElement('li');
  item.id = `job-${job.id}`;
  fill(item, job);
  return item;
}

function fill(item: HTMLElement, job: JobView) {
  const parts: HTMLElement[] = [cardHead(job)];
  const summary = optionsSummary(job);
  if (summary) parts.push(paragraph('options-summary', summary));
  const kept = retention(job);
  if (kept) parts.push(kept);
  if (job.status === 'converting' || job.status === 'uploaded') parts.push(conversionBar(job));
  const playable = job.status === 'converted' && !job.expired && job.signedUrl;
  if (playable) parts.push(player(job, playable));
  if (job.status === 'converted' || job.status === 'failed') parts.push(actions(job, playable));
  item.replaceChildren(...parts);
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
function actions(job: JobView, signedUrl: string | false | undefined): HTMLElement {
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
  remove.addEventListener('click', () => void deleteJob(job, remove));
  row.append(remove);
  return row;
}

/** DELETE /jobs/:id once the person confirms: the MP3 and the video go, and so does the card. */
async function deleteJob(job: JobView, button: HTMLButtonElement) {
  if (!confirm(`Delete ${job.filename}? Its MP3 and its video are removed for good.`)) return;
  button.disabled = true;
  const res = await api(`${endpoints.download}/jobs/${job.id}`, { method: 'DELETE' }).catch(() => null);
  if (!session.token) return; // signed out on a 401: that is said already
  if (res?.status === 204 || res?.status === 404) {
    showProblem(null);
    return removeCard(job, res.status === 204 ? `${job.filename} was deleted.` : `${job.filename} was already deleted.`);
  }
  button.disabled = false;
  showProblem(res ? await problemText(res) : 'earshot cannot be reached. Check your connection and try again.');
}

function removeCard(job: JobView, message: string) {
  watching.get(job.id)?.();
  watching.delete(job.id);
  document.getElementById(`job-${job.id}`)?.remove();
  $('no-jobs').hidden = $('jobs').children.length > 0;
  $('status').textContent = message;
  // The button that had the focus is gone: the list's heading takes it.
  $('jobs-title').focus();
}

const watching = new Map<string, () => void>();

/**
 * Follows a job over `GET /jobs/:id/events` until its final state. Read with fetch, not
 * EventSource, which cannot send the token; after a dropped connection it resumes from the last
 * event id it saw.
 */
function watch(id: string) {
  if (watching.has(id)) return;
  const controller = new AbortController();
  watching.set(id, () => controller.abort());
  let lastEventId: string | undefined;
  let job: JobView | undefined;
  const apply = (event: string, data: string) => {
    const item = document.getElementById(`job-${id}`);
    const value = JSON.parse(data) as Partial<JobView> & { percent?: number };
    if (event === 'progress') job = job && { ...job, progress: { percent: value.percent ?? 0 } };
    else job = { ...(job ?? {}), ...value } as JobView;
    if (!item || !job) return;
    fill(item, job);
    if (job.status === 'converting') $('status').textContent = `${job.filename}: ${Math.floor(job.progress?.percent ?? 0)} % converted`;
    if (job.status === 'converted') $('status').textContent = `${job.filename} is ready.`;
    if (job.status === 'failed') $('status').textContent = `${job.filename} could not be converted: ${job.error ?? ''}`;
  };
  void (async () => {
    // Streams end by design (Knative cuts a request at the Service's timeout): only attempts that
    // brought nothing count towards giving up.
    for (let failures = 0; !controller.signal.aborted && failures < 10; ) {
      const before = lastEventId;
      try {
        const res = await api(`${endpoints.download}/jobs/${id}/events`, { signal: controller.signal, headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
        if (!res.ok || !res.body) return showProblem(await problemText(res));
        let buffer = '';
        let event = 'message';
        let data: string[] = [];
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let newline: number;
          while ((newline = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, newline).replace(/\r$/, '');
            buffer = buffer.slice(newline + 1);
            if (line === '') {
              if (data.length > 0) apply(event, data.join('\n'));
              [event, data] = ['message', []];
            } else if (line.startsWith('id:')) lastEventId = line.slice(3).trim();
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
        }
        if (job?.status === 'converted' || job?.status === 'failed') break;
      } catch {
        if (controller.signal.aborted) return;
      }
      failures = lastEventId === before ? failures + 1 : 0;
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** failures, 15_000)));
    }
    watching.delete(id);
  })();
}

render();
// A reload may bring back what the options were set to.
controls.loudness.disabled = !controls.normalise.checked;
showOptionsCount();
if (session.token) void loadJobs();
