/**
 * The end-to-end suite on `make dev`'s runtime over real HTTP, whichever way the functions run:
 * their bundles (test/dev.test.ts) or their images in podman (test/images.test.ts); on either
 * broker. The pipeline, a corrupt video, a decompression bomb and a UTF-8 name, forged events at
 * the broker, and a failing subscriber's event dead-lettered and replayed.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { cp, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { expect, it } from 'vitest';
import { dataPlaneProcesses, managementApi } from '../local/dataplane';
import { EventTypes, makeEvent, toHttp } from '../shared/events';
import { decodedSeconds, makeSilence, makeVideo } from './media';
import { startRuntime as start, type Runtime as Started } from './runtime';
import { tempDir } from './support';

export type Broker = 'embedded' | 'rabbitmq';
export interface Mail {
  to: string;
  subject: string;
  text: string;
  /** The job it is about. */
  jobId: string;
}

/** How the functions run, and what a runtime of that kind needs beside its DATA_DIR. */
export interface Runner {
  name: string;
  prepare(dir: string): Promise<Prepared>;
}

export interface Prepared {
  env: Record<string, string>;
  /** Every mail sent so far. */
  mails(): Promise<Mail[]>;
  /**
   * A subscriber made to fail for as long as it takes: `env` for the runtime, then `arm()` once it
   * runs; `fix()` ends it. `jobStatus`: the job's state while its event is dead.
   */
  fault: { subscriber: string; eventType: string; jobStatus: string; env: Record<string, string>; arm(): void; fix(): Promise<void> };
  /** After the runtime has stopped: checks that nothing of it is left, and removes what the run made. */
  close(): Promise<void>;
}

export type Runtime = Started & { prepared: Prepared };

export const until = async (check: () => boolean, ms = 60_000, poll: () => Promise<void> = async () => undefined) => {
  for (const end = Date.now() + ms; (await poll(), !check()); await new Promise((r) => setTimeout(r, 100))) if (Date.now() > end) throw new Error('timed out waiting');
};
const run = async (file: string, args: string[]) => (await promisify(execFile)(file, args, { encoding: 'utf8' })).stdout;
const rabbitmq = managementApi();

const running: { child: ChildProcess; group: boolean; vhost?: string; prepared: Prepared }[] = [];

/** For afterEach: stops every runtime the test started, checks its data plane went with it, and closes what it prepared. */
export async function stopRuntimes(): Promise<void> {
  for (const { child, group, vhost, prepared } of running.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      if (group) process.kill(-child.pid!, 'SIGTERM');
      else child.kill('SIGTERM');
      await exited;
    }
    await prepared.close();
    if (!vhost) continue;
    // The runtime stops its data plane on the way out (make's exit may come first): every
    // ingress and dispatcher it ran, restarted ones included, is gone.
    const end = Date.now() + 60_000;
    while ((await dataPlaneProcesses(vhost)).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
    expect(await dataPlaneProcesses(vhost), `data-plane processes of ${vhost} still running`).toEqual([]);
    await rabbitmq(`/api/vhosts/${encodeURIComponent(vhost)}`, { method: 'DELETE' }).catch(() => undefined);
  }
}

export async function startRuntime(runner: Runner, dataDir: string, env: Record<string, string> = {}, viaMake = false, prepared?: Prepared): Promise<Runtime> {
  prepared ??= await runner.prepare(dataDir);
  let runtime: Started;
  try {
    runtime = await start(dataDir, { EARSHOT_BROKER: 'embedded', ...prepared.env, ...env }, viaMake);
  } catch (err) {
    await prepared.close();
    throw err;
  }
  running.push({ child: runtime.child, group: viaMake, vhost: runtime.ready.vhost, prepared });
  if (env.EARSHOT_BROKER === 'rabbitmq') {
    expect(runtime.ready).toMatchObject({ brokerKind: 'rabbitmq', vhost: expect.stringMatching(/^earshot-dev-/) });
    expect(Object.keys(runtime.ready.dataPlane!)).toContain('earshot-broker-ingress');
  } else {
    expect(runtime.ready.brokerKind).toBe('embedded');
  }
  return { ...runtime, prepared };
}

export const upload = async (rt: Started, path: string, name: string) => {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(await readFile(path))]), name);
  const res = await fetch(`${rt.ready.functions.upload}/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${rt.token}` } });
  expect(res.status).toBe(202);
  return ((await res.json()) as { videoId: string }).videoId;
};

export const waitForJob = async (rt: Started, id: string, status: string, ms = 120_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const job = (await (await fetch(`${rt.ready.functions.download}/jobs/${id}`, { headers: { authorization: `Bearer ${rt.token}` } })).json()) as { status: string; error?: string; downloadUrl?: string; signedUrl?: string };
    if (job.status === status) return job;
    if (Date.now() > end) throw new Error(`job ${id} is still ${job.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

/** The mails about job `id` once there are `count` of them, or all there are after `ms`. */
export const mailsFor = async (rt: Runtime, id: string, count: number, ms = 30_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const mails = (await rt.prepared.mails()).filter((m) => m.jobId === id);
    if (mails.length >= count || Date.now() > end) return mails;
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** The suite; `runner` says how the functions run. */
export function endToEnd(broker: Broker, runner: Runner) {
  it(`runs the pipeline (${runner.name}): login, upload, converted, download the MP3, one email with the link; a corrupt video fails with an email`, async () => {
    const dir = await tempDir();
    const rt = await startRuntime(runner, join(dir, 'data'), { EARSHOT_BROKER: broker }, true);
    const video = await makeVideo(join(dir, 'talk.mp4'), { seconds: 4 });
    const id = await upload(rt, video, 'talk.mp4');

    const job = await waitForJob(rt, id, 'converted');
    const res = await fetch(`${rt.ready.functions.download}${job.downloadUrl}`, { headers: { authorization: `Bearer ${rt.token}` } });
    expect(res.status).toBe(200);
    const mp3 = join(dir, 'talk.mp3');
    const bytes = Buffer.from(await res.arrayBuffer());
    await writeFile(mp3, bytes);
    expect(Math.abs((await decodedSeconds(mp3)) - (await decodedSeconds(video)))).toBeLessThanOrEqual(0.5);

    const mails = await mailsFor(rt, id, 1);
    await new Promise((r) => setTimeout(r, 500)); // a second email would have arrived by now
    expect(await mailsFor(rt, id, 2, 0)).toHaveLength(1);
    expect(mails[0]).toMatchObject({ to: 'demo@earshot.localhost', subject: 'Your MP3 is ready: talk.mp3' });
    // The email's link opens the MP3 with no login, as a mail client's browser would; a changed signature opens nothing.
    const link = mails[0]!.text.match(/http\S+/g)!.find((url) => url.startsWith(`${rt.ready.functions.download}/download/${id}?sig=`))!;
    expect(link).toBeDefined();
    const bySignedLink = await fetch(link);
    expect(bySignedLink.status).toBe(200);
    expect(Buffer.from(await bySignedLink.arrayBuffer()).equals(bytes)).toBe(true);
    const i = link.lastIndexOf('.') + 4;
    const changed = await fetch(link.slice(0, i) + (link[i] === 'A' ? 'B' : 'A') + link.slice(i + 1));
    expect(changed.status).toBe(404);
    expect(changed.headers.get('content-type')).toBe('application/problem+json');
    // The job gives its owner a fresh link too.
    const fromJob = await fetch(`${rt.ready.functions.download}${job.signedUrl}`);
    expect(fromJob.status).toBe(200);
    expect(Buffer.from(await fromJob.arrayBuffer()).equals(bytes)).toBe(true);

    const whole = await readFile(video);
    const corrupt = join(dir, 'corrupt.mp4');
    await writeFile(corrupt, whole.subarray(0, Math.floor(whole.length / 2)));
    const bad = await upload(rt, corrupt, 'corrupt.mp4');
    expect(await waitForJob(rt, bad, 'failed')).toMatchObject({ error: expect.stringMatching(/could not be read/) });
    const [failure] = await mailsFor(rt, bad, 1);
    expect(failure!.subject).toMatch(/could not convert/);

    // Ctrl-C stops make dev and every function with it.
    process.kill(-rt.child.pid!, 'SIGINT');
    await once(rt.child, 'exit');
  });

  it(`fails a ten-hour silent FLAC on its declared length at once; a clip uploaded next with curl converts, its UTF-8 name kept in the job, the email and the download; forged events at the broker mail nobody (${runner.name})`, async () => {
    const dir = await tempDir();
    const rt = await startRuntime(runner, join(dir, 'data'), { EARSHOT_BROKER: broker });
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

    const [mail] = await mailsFor(rt, clipId, 1);
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
    const mails = await rt.prepared.mails();
    expect(mails.filter((m) => m.to !== 'demo@earshot.localhost' || /evil/.test(m.text))).toEqual([]);
    expect(await mailsFor(rt, clipId, 2, 0)).toHaveLength(1);
  });

  it(`dead-letters an event its subscriber keeps failing: after the Trigger's retries it reaches deadletter with the error extensions; replayed once the subscriber is fixed, the job finishes and mails once (${runner.name})`, async () => {
    const dir = await tempDir();
    // The repository's manifests, but the Triggers back off from 1 s and retry 3 times (2 + 4 + 8 s of retries).
    const manifests = join(dir, 'manifests');
    for (const d of ['knative', 'eventing']) await cp(d, join(manifests, d), { recursive: true });
    const triggers = join(manifests, 'eventing', 'triggers.yaml');
    await writeFile(triggers, (await readFile(triggers, 'utf8')).replace(/backoffDelay: PT\d+S/g, 'backoffDelay: PT1S').replace(/retry: \d+/g, 'retry: 3'));
    const data = join(dir, 'data');
    const prepared = await runner.prepare(data);
    const { fault } = prepared;
    const rt = await startRuntime(runner, data, { EARSHOT_BROKER: broker, EARSHOT_MANIFESTS: manifests, ...fault.env }, false, prepared);
    fault.arm();
    const id = await upload(rt, await makeVideo(join(dir, 'v.mp4'), { seconds: 1 }), 'v.mp4');

    type Letter = { id: string; subject?: string; type?: string; errorDest?: string; errorCode?: string };
    let letters: Letter[] = [];
    await until(() => letters.some((l) => l.subject === id), 300_000, async () => {
      const res = await fetch(`${rt.ready.functions.deadletter}/dead-letters`, { headers: { authorization: `Bearer ${rt.token}` } });
      letters = (await res.json()) as Letter[];
    });
    const port = new URL(rt.ready.functions[fault.subscriber]!).port;
    expect(letters).toEqual([
      expect.objectContaining({ subject: id, type: fault.eventType, errorCode: expect.stringMatching(/^5\d\d$/), errorDest: expect.stringMatching(new RegExp(`:${port}/?$`)) }),
    ]);
    expect((await waitForJob(rt, id, fault.jobStatus, 0)).status).toBe(fault.jobStatus);
    expect(await mailsFor(rt, id, 1, 0)).toHaveLength(0);

    // The fix, then the admin's replay: the event goes back through the broker without the error
    // extensions, and the pipeline finishes.
    await fault.fix();
    const admin = { authorization: `Bearer ${rt.token}` };
    const replay = await fetch(`${rt.ready.functions.deadletter}/dead-letters/${letters[0]!.id}/replay`, { method: 'POST', headers: admin });
    expect(replay.status).toBe(202);
    await waitForJob(rt, id, 'converted', 300_000);
    expect(await mailsFor(rt, id, 1)).toHaveLength(1);
    expect((await fetch(`${rt.ready.functions.deadletter}/dead-letters/${letters[0]!.id}`, { headers: admin })).status).toBe(404);
    await new Promise((r) => setTimeout(r, 500));
    expect(await mailsFor(rt, id, 2, 0)).toHaveLength(1);
  }, 600_000);
}

/** Each function from its bundle, with make dev's embedded defaults: mail goes to the outbox under DATA_DIR. */
export const bundles: Runner = {
  name: 'bundles',
  async prepare(dataDir) {
    const outbox = join(dataDir, 'outbox');
    // convert cannot start while nothing is at its FFMPEG_PATH: every delivery to it is answered 502.
    const ffmpeg = `${dataDir}.ffmpeg`;
    return {
      env: {},
      async mails() {
        const files = (await readdir(outbox).catch(() => [])).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
        return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(outbox, f), 'utf8')) as Mail));
      },
      fault: {
        subscriber: 'convert',
        eventType: EventTypes.videoUploaded,
        jobStatus: 'uploaded',
        env: { FFMPEG_PATH: ffmpeg },
        arm: () => undefined,
        fix: () => symlink(ffmpegInstaller.path, ffmpeg),
      },
      close: async () => undefined,
    };
  },
};
