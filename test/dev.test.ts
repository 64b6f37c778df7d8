/**
 * `make dev`'s runtime as a child process, over real HTTP. On both brokers (the embedded one, and
 * EARSHOT_BROKER=rabbitmq: RabbitMQ with eventing-rabbitmq's ingress and dispatchers, which
 * `make services` provides): the pipeline end to end, a corrupt video, a decompression bomb and a
 * UTF-8 name, forged events at the broker, and a failing subscriber's event dead-lettered and replayed. On the
 * embedded one: a SIGKILL with an event in flight, and scale to zero.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { afterEach, describe, expect, it } from 'vitest';
import { dataPlaneProcesses, localDefaults } from '../local/dataplane';
import { EventTypes, makeEvent, toHttp } from '../shared/events';
import { decodedSeconds, makeSilence, makeVideo } from './media';
import { startRuntime as start, type Runtime } from './runtime';
import { describeWithService } from './services';
import { tempDir } from './support';

const until = async (check: () => boolean, ms = 60_000, poll: () => Promise<void> = async () => undefined) => {
  for (const end = Date.now() + ms; (await poll(), !check()); await new Promise((r) => setTimeout(r, 100))) if (Date.now() > end) throw new Error('timed out waiting');
};
const run = async (file: string, args: string[]) => (await promisify(execFile)(file, args, { encoding: 'utf8' })).stdout;
type Broker = 'embedded' | 'rabbitmq';
const running: { child: ChildProcess; group: boolean; vhost?: string }[] = [];
afterEach(async () => {
  for (const { child, group, vhost } of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      if (group) process.kill(-child.pid!, 'SIGTERM');
      else child.kill('SIGTERM');
      await exited;
    }
    if (!vhost) continue;
    // The runtime stops its data plane on the way out (make's exit may come first): every
    // ingress and dispatcher it ran, restarted ones included, is gone.
    const end = Date.now() + 60_000;
    while ((await dataPlaneProcesses(vhost)).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
    expect(await dataPlaneProcesses(vhost), `data-plane processes of ${vhost} still running`).toEqual([]);
    await rabbitmq(`/api/vhosts/${encodeURIComponent(vhost)}`, { method: 'DELETE' }).catch(() => undefined);
  }
});

async function startRuntime(dataDir: string, env: Record<string, string> = {}, viaMake = false): Promise<Runtime> {
  const runtime = await start(dataDir, { EARSHOT_BROKER: 'embedded', ...env }, viaMake);
  running.push({ child: runtime.child, group: viaMake, vhost: runtime.ready.vhost });
  if (env.EARSHOT_BROKER === 'rabbitmq') {
    expect(runtime.ready).toMatchObject({ brokerKind: 'rabbitmq', vhost: expect.stringMatching(/^earshot-dev-/) });
    expect(Object.keys(runtime.ready.dataPlane!)).toContain('earshot-broker-ingress');
  } else {
    expect(runtime.ready.brokerKind).toBe('embedded');
  }
  return runtime;
}

/** tools/services.sh's node: its management API (local-development credentials) and the data-plane binaries. */
const rabbitmq = async (path: string, init: RequestInit = {}) => {
  const { username, password } = new URL(localDefaults.amqpUrl);
  const res = await fetch(localDefaults.managementUrl + path, { ...init, headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` }, signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res;
};
const rabbitmqAvailable =
  ['rabbitmq-topology', 'rabbitmq-ingress', 'rabbitmq-dispatcher'].every((b) => existsSync(join(localDefaults.bin, b))) &&
  (await rabbitmq('/api/overview').then(() => true, () => false));

const upload = async (rt: Runtime, path: string, name: string) => {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(await readFile(path))]), name);
  const res = await fetch(`${rt.ready.functions.upload}/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${rt.token}` } });
  expect(res.status).toBe(202);
  return ((await res.json()) as { videoId: string }).videoId;
};

const waitForJob = async (rt: Runtime, id: string, status: string, ms = 60_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const job = (await (await fetch(`${rt.ready.functions.download}/jobs/${id}`, { headers: { authorization: `Bearer ${rt.token}` } })).json()) as { status: string; error?: string; downloadUrl?: string };
    if (job.status === status) return job;
    if (Date.now() > end) throw new Error(`job ${id} is still ${job.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

const mailsFor = async (outbox: string, id: string, count: number, ms = 10_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const files = (await readdir(outbox).catch(() => [])).filter((f) => f.includes(id));
    if (files.length >= count || Date.now() > end) {
      return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(outbox, f), 'utf8')) as { to: string; subject: string; text: string }));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** What must hold whichever broker runs. */
function onEitherBroker(broker: Broker) {
  it('runs the pipeline: login, upload, converted, download the MP3, one email with the link; a corrupt video fails with an email', async () => {
    const dir = await tempDir();
    const rt = await startRuntime(join(dir, 'data'), { EARSHOT_BROKER: broker }, true);
    const video = await makeVideo(join(dir, 'talk.mp4'), { seconds: 4 });
    const id = await upload(rt, video, 'talk.mp4');

    const job = await waitForJob(rt, id, 'converted');
    const res = await fetch(`${rt.ready.functions.download}${job.downloadUrl}`, { headers: { authorization: `Bearer ${rt.token}` } });
    expect(res.status).toBe(200);
    const mp3 = join(dir, 'talk.mp3');
    await writeFile(mp3, Buffer.from(await res.arrayBuffer()));
    expect(Math.abs((await decodedSeconds(mp3)) - (await decodedSeconds(video)))).toBeLessThanOrEqual(0.5);

    const mails = await mailsFor(rt.ready.outbox, id, 1);
    await new Promise((r) => setTimeout(r, 500)); // a second email would have arrived by now
    expect(await mailsFor(rt.ready.outbox, id, 2, 0)).toHaveLength(1);
    expect(mails[0]).toMatchObject({ to: 'demo@earshot.localhost', subject: 'Your MP3 is ready: talk.mp3' });
    expect(mails[0]!.text).toContain(`${rt.ready.functions.download}/download/${id}`);

    const whole = await readFile(video);
    const corrupt = join(dir, 'corrupt.mp4');
    await writeFile(corrupt, whole.subarray(0, Math.floor(whole.length / 2)));
    const bad = await upload(rt, corrupt, 'corrupt.mp4');
    expect(await waitForJob(rt, bad, 'failed')).toMatchObject({ error: expect.stringMatching(/could not be read/) });
    const [failure] = await mailsFor(rt.ready.outbox, bad, 1);
    expect(failure!.subject).toMatch(/could not convert/);

    // Ctrl-C stops make dev and every function with it.
    process.kill(-rt.child.pid!, 'SIGINT');
    await once(rt.child, 'exit');
  });

  it('fails a ten-hour silent FLAC on its declared length at once; a clip uploaded next with curl converts, its UTF-8 name kept in the job, the email and the download; forged events at the broker mail nobody', async () => {
    const dir = await tempDir();
    const rt = await startRuntime(join(dir, 'data'), { EARSHOT_BROKER: broker });
    const bomb = await makeSilence(join(dir, 'silence.flac'), 10 * 3600);
    expect((await stat(bomb)).size).toBeLessThan(100_000); // a few tens of KB
    const bombId = await upload(rt, bomb, 'silence.flac');

    const name = "Fête d'été — 2026.mov";
    const clip = await makeVideo(join(dir, name), { seconds: 2 });
    // curl, as a user would: -F sends the file name as raw UTF-8, the way browsers do.
    const sent = await run('curl', ['-sS', '-H', `Authorization: Bearer ${rt.token}`, '-F', `file=@${clip}`, `${rt.ready.functions.upload}/upload`]);
    const clipId = (JSON.parse(sent) as { videoId: string }).videoId;

    const failed = (await waitForJob(rt, bombId, 'failed')) as { error?: string };
    expect(failed.error).toMatch(/10:00:00 long; earshot converts up to 4:00:00/);
    const job = (await waitForJob(rt, clipId, 'converted')) as { filename?: string; downloadUrl?: string };
    expect(job.filename).toBe(name);

    const [mail] = await mailsFor(rt.ready.outbox, clipId, 1);
    expect(mail!.subject).toBe("Your MP3 is ready: Fête d'été — 2026.mp3");
    const res = await fetch(`${rt.ready.functions.download}${job.downloadUrl}`, { headers: { authorization: `Bearer ${rt.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain(`filename*=UTF-8''${encodeURIComponent("Fête d'été — 2026.mp3").replace(/'/g, '%27')}`);

    // Events are claims: forged ones posted at the broker, as anything in the cluster could, reach
    // convert and notify through the Triggers and mail nobody; the owner's one email stays one.
    const stranger = { id: 'mallory', email: 'mallory@evil.example' };
    const forged = [
      makeEvent(EventTypes.audioConverted, '/evil', clipId, { videoId: clipId, mp3Id: clipId, owner: stranger, filename: 'evil.mp3', durationSeconds: 1, sizeBytes: 1 }),
      makeEvent(EventTypes.conversionFailed, '/evil', clipId, { videoId: clipId, owner: stranger, filename: 'evil.mp4', reason: 'evil' }),
      makeEvent(EventTypes.audioConverted, '/evil', randomUUID(), { videoId: randomUUID(), mp3Id: randomUUID(), owner: stranger, filename: 'evil.mp3', durationSeconds: 1, sizeBytes: 1 }),
      makeEvent(EventTypes.videoUploaded, '/evil', bombId, { videoId: bombId, owner: stranger, filename: 'evil.mp4', contentType: 'video/mp4', sizeBytes: 1 }),
    ].map((event, i) => ({ ...event, id: `forged-${i}` }));
    for (const event of forged) {
      const { headers, body } = toHttp(event);
      expect((await fetch(rt.ready.broker, { method: 'POST', headers, body })).status).toBe(202);
    }
    // The embedded broker logs each outcome; with RabbitMQ's dispatchers, the subscriber's request line says it answered.
    const delivered = (id: string) =>
      rt.lines.some((l) => l.eventId === id && (l.msg === 'delivered' || l.msg === 'dropped: the subscriber refused the event' || (l.msg === 'request' && Number(l.status) < 500)));
    for (const event of forged) await until(() => delivered(event.id));
    const outbox = await readdir(rt.ready.outbox);
    const mails = await Promise.all(outbox.map(async (f) => JSON.parse(await readFile(join(rt.ready.outbox, f), 'utf8')) as { to: string; text: string }));
    expect(mails.filter((m) => m.to !== 'demo@earshot.localhost' || /evil/.test(m.text))).toEqual([]);
    expect(await mailsFor(rt.ready.outbox, clipId, 2, 0)).toHaveLength(1);
  });

  it('dead-letters an event its subscriber keeps failing: after the Trigger\'s retries it reaches deadletter with the error extensions; replayed once convert is fixed, the job converts and mails once', async () => {
    const dir = await tempDir();
    // The repository's manifests, but convert's Trigger backs off from 1 s instead of 10 s (2 + 4 + 8 s of retries).
    const manifests = join(dir, 'manifests');
    for (const d of ['knative', 'eventing']) await cp(d, join(manifests, d), { recursive: true });
    const triggers = join(manifests, 'eventing', 'triggers.yaml');
    await writeFile(triggers, (await readFile(triggers, 'utf8')).replace('backoffDelay: PT10S', 'backoffDelay: PT1S'));
    // convert cannot start (nothing is at its FFMPEG_PATH yet), so every delivery to it is answered 502.
    const ffmpeg = join(dir, 'ffmpeg');
    const rt = await startRuntime(join(dir, 'data'), { EARSHOT_BROKER: broker, EARSHOT_MANIFESTS: manifests, FFMPEG_PATH: ffmpeg });
    const id = await upload(rt, await makeVideo(join(dir, 'v.mp4'), { seconds: 1 }), 'v.mp4');

    type Letter = { id: string; subject?: string; type?: string; errorDest?: string; errorCode?: string };
    let letters: Letter[] = [];
    await until(() => letters.some((l) => l.subject === id), 300_000, async () => {
      const res = await fetch(`${rt.ready.functions.deadletter}/dead-letters`, { headers: { authorization: `Bearer ${rt.token}` } });
      letters = (await res.json()) as Letter[];
    });
    const convertPort = new URL(rt.ready.functions.convert!).port;
    expect(letters).toEqual([
      expect.objectContaining({ subject: id, type: EventTypes.videoUploaded, errorCode: '502', errorDest: expect.stringMatching(new RegExp(`:${convertPort}/?$`)) }),
    ]);
    expect((await waitForJob(rt, id, 'uploaded', 0)).status).toBe('uploaded');

    // The fix (ffmpeg where convert looks for it), then the admin's replay: the event goes back
    // through the broker without the error extensions, and the pipeline finishes.
    await symlink(ffmpegInstaller.path, ffmpeg);
    const admin = { authorization: `Bearer ${rt.token}` };
    const replay = await fetch(`${rt.ready.functions.deadletter}/dead-letters/${letters[0]!.id}/replay`, { method: 'POST', headers: admin });
    expect(replay.status).toBe(202);
    await waitForJob(rt, id, 'converted', 300_000);
    expect(await mailsFor(rt.ready.outbox, id, 1)).toHaveLength(1);
    expect((await fetch(`${rt.ready.functions.deadletter}/dead-letters/${letters[0]!.id}`, { headers: admin })).status).toBe(404);
    await new Promise((r) => setTimeout(r, 500));
    expect(await mailsFor(rt.ready.outbox, id, 2, 0)).toHaveLength(1);
  }, 600_000);
}

describe('make dev (embedded broker)', () => {
  onEitherBroker('embedded');

  // The file queue's durability (local/queue.ts); on RabbitMQ that is RabbitMQ's own (an unacknowledged
  // message goes back to its queue), and the runtime killed with SIGKILL takes its data plane along.
  it('delivers after a SIGKILL the event it had accepted, and the pipeline finishes with one MP3 and one email', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const env = { CONVERT_LEASE_SECONDS: '2' };
    const first = await startRuntime(data, env);
    const video = await makeVideo(join(dir, 'v.mp4'), { seconds: 3 });
    const id = await upload(first, video, 'v.mp4');
    first.child.kill('SIGKILL'); // the event is accepted (upload answered 202) but convert has not replied
    await once(first.child, 'exit');
    expect(first.lines.some((l) => l.msg === 'delivered' && String(l.eventId).startsWith(id))).toBe(false);

    const second = await startRuntime(data, env);
    expect(second.ready.recovered).toBeGreaterThanOrEqual(1);
    await waitForJob(second, id, 'converted');
    expect(await mailsFor(second.ready.outbox, id, 1)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(await mailsFor(second.ready.outbox, id, 2, 0)).toHaveLength(1);
    const mp3s = (await readdir(join(data, 'store', 'media', 'mp3s'))).filter((f) => f.startsWith(id) && !f.endsWith('.json'));
    expect(mp3s).toHaveLength(1);
  });

  // The activator's, whichever broker delivers.
  it('stops functions idle past the period, and starts them again on the next request', async () => {
    const dir = await tempDir();
    const rt = await startRuntime(join(dir, 'data'), { EARSHOT_IDLE_SECONDS: '1' });
    const coldStarts = () => rt.lines.filter((l) => l.msg === 'cold start' && l.function === 'login').length;
    expect(coldStarts()).toBe(1); // the login of startRuntime
    const end = Date.now() + 10_000;
    while (!rt.lines.some((l) => l.msg === 'scaled to zero' && l.function === 'login')) {
      if (Date.now() > end) throw new Error('login was not scaled to zero');
      await new Promise((r) => setTimeout(r, 100));
    }
    const res = await fetch(`${rt.ready.functions.login}/healthz`);
    expect(res.status).toBe(200);
    expect(coldStarts()).toBe(2);
  });
});

describeWithService('RabbitMQ and eventing-rabbitmq\'s ingress and dispatcher', rabbitmqAvailable, 'make dev with EARSHOT_BROKER=rabbitmq', () => {
  onEitherBroker('rabbitmq');
});
