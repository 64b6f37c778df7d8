/**
 * A conversion watched live over real HTTP, on `make dev`'s runtime with every function from its
 * bundle: a 60-second clip's events arrive in order (uploaded → converting, percents that only
 * rise → converted with the job's links), and a watcher that reconnects with Last-Event-ID
 * misses nothing. convert's ffmpeg reads its input at the pace it plays (`-re`), so the
 * conversion takes the clip's minute and its progress can be watched; still no assertion depends
 * on speed: none requires a number of progress events, or that the watcher sees any.
 */
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { bundles, startRuntime, stopRuntimes, upload } from './e2e';
import { makeVideo, pacedFfmpeg } from './media';
import { connect, type Message } from './sse';
import { tempDir } from './support';

afterEach(stopRuntimes);

const data = (m: Message) => JSON.parse(m.data!) as Record<string, unknown>;

it('streams a 60-second clip\'s conversion in order, and a reconnect with Last-Event-ID misses nothing', async () => {
  const dir = await tempDir();
  const rt = await startRuntime(bundles, join(dir, 'data'), { FFMPEG_PATH: await pacedFfmpeg(dir) });
  const video = await makeVideo(join(dir, 'talk.mp4'), { seconds: 60 });
  const id = await upload(rt, video, 'talk.mp4');
  const events = `${rt.ready.functions.download}/jobs/${id}/events`;

  // The first watcher leaves once the conversion has started; the second resumes from there to the end.
  const first = await connect(events, rt.token);
  expect(first.res.status).toBe(200);
  expect(first.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const before = await first.until((m) => m.event === 'status' && data(m).status === 'converting');
  first.close();
  const second = await connect(events, rt.token, { 'last-event-id': before.at(-1)!.id! });
  const after = await second.rest();
  expect(second.ended()).toBe(true);

  const seen = [...before, ...after];
  const ids = seen.map((m) => Number(m.id));
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  expect(new Set(ids).size).toBe(ids.length);
  expect(seen.filter((m) => m.event === 'status').map((m) => data(m).status)).toEqual(['uploaded', 'converting', 'converted']);

  // Progress only while converting, only rising.
  const converting = seen.findIndex((m) => m.event === 'status' && data(m).status === 'converting');
  const progress = seen.flatMap((m, i) => (m.event === 'progress' ? [{ i, percent: data(m).percent as number }] : []));
  for (const { i, percent } of progress) {
    expect(i).toBeGreaterThan(converting);
    expect(percent).toBeGreaterThanOrEqual(0);
    expect(percent).toBeLessThanOrEqual(100);
  }
  expect(progress.map((p) => p.percent)).toEqual(progress.map((p) => p.percent).sort((a, b) => a - b));

  // The last event is the final status, with the links GET /jobs/:id gives.
  const converted = data(seen.at(-1)!);
  const job = (await (await fetch(`${rt.ready.functions.download}/jobs/${id}`, { headers: { authorization: `Bearer ${rt.token}` } })).json()) as Record<string, unknown>;
  expect(converted).toMatchObject({ id, status: 'converted', downloadUrl: job.downloadUrl, mp3: job.mp3 });
  expect(Object.keys(converted).sort()).toEqual(Object.keys(job).sort());

  // A watcher back from before the end gets exactly the statuses after its last id.
  const convertingId = seen[converting]!.id!;
  const late = await connect(events, rt.token, { 'last-event-id': convertingId });
  const missed = await late.rest();
  expect(missed.map((m) => `${m.id} ${m.event}`)).toEqual([`${seen.at(-1)!.id} status`]);
});
