/**
 * The page's script, bundled for browsers (functions/web/assets.ts). No framework: a sign-in
 * form, an upload with a real progress bar, and the caller's jobs, each watched live over the
 * download function's event stream until it is converted (a player and a download link) or
 * failed (its reason). Every problem+json the API answers is shown as the person-readable text
 * it carries.
 */
interface Endpoints {
  login: string;
  upload: string;
  download: string;
}

interface JobView {
  id: string;
  status: 'uploaded' | 'converting' | 'converted' | 'failed';
  filename: string;
  createdAt: string;
  progress?: { percent: number };
  mp3?: { durationSeconds: number; sizeBytes: number };
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
  const bar = $<HTMLProgressElement>('upload-progress');
  const status = $('status');
  const form = new FormData();
  form.append('file', file, file.name);
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
      return showProblem(await problemText(res));
    }
    showProblem(null);
    const { videoId } = JSON.parse(xhr.responseText) as { videoId: string };
    status.textContent = `${file.name} uploaded; converting…`;
    $<HTMLFormElement>('upload').reset();
    const job: JobView = { id: videoId, status: 'uploaded', filename: file.name, createdAt: new Date().toISOString() };
    $('jobs').prepend(card(job));
    $('no-jobs').hidden = true;
    watch(job.id);
  };
  showProblem(null);
  bar.value = 0;
  status.textContent = `Uploading ${file.name}…`;
  xhr.send(form);
});

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
    converted: `Ready${job.mp3 ? ` · ${minutes(job.mp3.durationSeconds)}` : ''}`,
    failed: `Could not convert: ${job.error ?? 'no reason was given'}`,
  })[job.status];

const minutes = (seconds: number) => `${Math.floor(seconds / 60)}:${String(Math.round(seconds % 60)).padStart(2, '0')}`;

/** A job's list item; rendered again, in place, whenever the job changes. */
function card(job: JobView): HTMLLIElement {
  const item = document.createElement('li');
  item.id = `job-${job.id}`;
  fill(item, job);
  return item;
}

function fill(item: HTMLElement, job: JobView) {
  const head = document.createElement('div');
  head.className = 'job-head';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = job.filename;
  const state = document.createElement('span');
  state.className = `state state-${job.status}`;
  state.textContent = stateText(job);
  head.append(name, state);
  const parts: HTMLElement[] = [head];
  if (job.status === 'converting' || job.status === 'uploaded') {
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = job.progress?.percent ?? 0;
    bar.setAttribute('aria-label', `Conversion of ${job.filename}`);
    parts.push(bar);
  }
  if (job.status === 'converted' && job.signedUrl) {
    const url = new URL(job.signedUrl, endpoints.download).href;
    const audio = document.createElement('audio');
    audio.controls = true;
    audio.preload = 'metadata';
    audio.src = url;
    audio.setAttribute('aria-label', `Play ${job.filename}`);
    const link = document.createElement('a');
    link.href = url;
    link.textContent = 'Download the MP3';
    link.setAttribute('download', '');
    parts.push(audio, link);
  }
  item.replaceChildren(...parts);
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
if (session.token) void loadJobs();
