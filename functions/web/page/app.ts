/**
 * The page's script, bundled for browsers (functions/web/assets.ts). No framework: a sign-in
 * form, an upload with a real progress bar and optional conversion options (options.ts), and the
 * caller's jobs as cards (card.ts), each watched live over the download function's event stream
 * until it is converted (a player and a download link, and how long the MP3 is kept) or failed
 * (its reason); a settled job can be deleted. Every problem+json the API answers is shown as the
 * person-readable text it carries.
 */
import { authorizedFetch, problemText } from './api';
import { card, fill } from './card';
import { endpoints } from './config';
import { $ } from './dom';
import { readEvents } from './event-stream';
import { clearInvalid, markInvalid, optionFields, setUpOptions } from './options';
import { postWithProgress } from './post-with-progress';
import { session } from './session';
import type { JobView } from './types';

const sessionEnded = 'Your session ended: sign in again.';
const api = authorizedFetch(() => signOut(sessionEnded));
/** The jobs followed live, and how to stop following each. */
const watching = new Map<string, () => void>();

function showProblem(text: string | null) {
  const box = $('problem');
  box.textContent = text ?? '';
  box.hidden = !text;
}

/** The live region: what just happened, for screen readers too. */
function say(text: string) {
  $('status').textContent = text;
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
  void send(form, file.name);
});

/** Sends an upload, with the bytes sent on the upload bar; once accepted, its job joins the list. */
async function send(form: FormData, filename: string) {
  const bar = $<HTMLProgressElement>('upload-progress');
  showProblem(null);
  bar.value = 0;
  say(`Uploading ${filename}…`);
  const res = await postWithProgress(`${endpoints.upload}/upload`, form, { authorization: `Bearer ${session.token}` }, (percent) => (bar.value = percent));
  if (!res) return showProblem('The upload was cut off. Check your connection and try again.');
  if (res.status === 401) return signOut(sessionEnded);
  if (res.status !== 202) {
    bar.value = 0;
    say('');
    const problem = await problemText(res);
    showProblem(problem);
    if (res.status === 400) markInvalid(problem);
    return;
  }
  showProblem(null);
  const { videoId } = (await res.json()) as { videoId: string };
  say(`${filename} uploaded; converting…`);
  // Only the file is cleared: the options stay as they are for the next upload.
  $<HTMLInputElement>('file').value = '';
  const job: JobView = { id: videoId, status: 'uploaded', filename, createdAt: new Date().toISOString() };
  $('jobs').prepend(card(job, deleteJob));
  $('no-jobs').hidden = true;
  watch(job.id);
}

let nextCursor: string | undefined;
$('more').addEventListener('click', () => void loadJobs(nextCursor));

async function loadJobs(cursor?: string) {
  const res = await api(`${endpoints.download}/jobs?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).catch(() => null);
  if (!res) return;
  if (!res.ok) return showProblem(await problemText(res));
  const page = (await res.json()) as { jobs: JobView[]; nextCursor?: string | null };
  for (const job of page.jobs) {
    $('jobs').append(card(job, deleteJob));
    if (job.status === 'uploaded' || job.status === 'converting') watch(job.id);
  }
  nextCursor = page.nextCursor ?? undefined;
  $('more').hidden = !nextCursor;
  $('no-jobs').hidden = $('jobs').children.length > 0;
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
  say(message);
  // The button that had the focus is gone: the list's heading takes it.
  $('jobs-title').focus();
}

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
    fill(item, job, deleteJob);
    if (job.status === 'converting') say(`${job.filename}: ${Math.floor(job.progress?.percent ?? 0)} % converted`);
    if (job.status === 'converted') say(`${job.filename} is ready.`);
    if (job.status === 'failed') say(`${job.filename} could not be converted: ${job.error ?? ''}`);
  };
  void (async () => {
    // Streams end by design (Knative cuts a request at the Service's timeout): only attempts that
    // brought nothing count towards giving up.
    for (let failures = 0; !controller.signal.aborted && failures < 10; ) {
      const before = lastEventId;
      try {
        const res = await api(`${endpoints.download}/jobs/${id}/events`, { signal: controller.signal, headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
        if (!res.ok || !res.body) return showProblem(await problemText(res));
        await readEvents(res.body, apply, (eventId) => (lastEventId = eventId));
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
setUpOptions();
if (session.token) void loadJobs();
