/**
 * Retention through `make dev`: the runtime fires the sweep PingSource of eventing/pingsource.yaml
 * at the sweeper, which deletes an MP3 once it is past MP3_RETENTION_DAYS.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { bundles, startRuntime, stopRuntimes, until, upload, waitForJob } from './e2e';
import { makeVideo } from './media';
import { tempDir } from './support';

afterEach(stopRuntimes);

it('expires a converted MP3 once its retention is over: the PingSource pings the sweeper, which deletes it; the job says so and its download answers 410', async () => {
  const dir = await tempDir();
  const data = join(dir, 'data');
  const rt = await startRuntime(bundles, data, { MP3_RETENTION_DAYS: String(2 / 86400), EARSHOT_PING_EVERY_SECONDS: '1' });
  const id = await upload(rt, await makeVideo(join(dir, 'v.mp4'), { seconds: 1 }), 'v.mp4');
  const converted = await waitForJob(rt, id, 'converted');
  expect(converted.downloadUrl).toBeDefined();

  // The sweeper's own log line says it deleted this MP3, on a ping of make dev's.
  await until(() => rt.lines.some((l) => l.fn === 'sweeper' && l.msg === 'mp3 expired' && l.videoId === id), 120_000);
  expect(rt.lines).toContainEqual(expect.objectContaining({ fn: 'pingsource', msg: 'pinged', pingSource: 'sweep', sink: 'sweeper', status: 200 }));
  const mp3s = await readdir(join(data, 'store', 'media', 'mp3s')).catch(() => []);
  expect(mp3s.filter((f) => f.startsWith(id))).toEqual([]);

  const auth = { authorization: `Bearer ${rt.token}` };
  const job = (await (await fetch(`${rt.ready.functions.download}/jobs/${id}`, { headers: auth })).json()) as Record<string, unknown>;
  expect(job).toMatchObject({ id, status: 'converted', expired: true });
  expect(job.downloadUrl).toBeUndefined();
  const res = await fetch(`${rt.ready.functions.download}${converted.downloadUrl}`, { headers: auth });
  expect(res.status).toBe(410);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(((await res.json()) as { detail: string }).detail).toMatch(/expired .*and was deleted/);
}, 300_000);
