/**
 * `make dev`'s runtime as a child process, over real HTTP, each function from its bundle. The
 * end-to-end suite (test/e2e.ts) on both brokers: the embedded one, and EARSHOT_BROKER=rabbitmq
 * (RabbitMQ with eventing-rabbitmq's ingress and dispatchers, which `make services` provides).
 * On the embedded one also: a SIGKILL with an event in flight, and scale to zero.
 */
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dataPlaneAvailable } from '../local/dataplane';
import { bundles, endToEnd, mailsFor, startRuntime, stopRuntimes, upload, waitForJob } from './e2e';
import { makeVideo } from './media';
import { describeWithService } from './services';
import { tempDir } from './support';

afterEach(stopRuntimes);

describe('make dev (embedded broker)', () => {
  endToEnd('embedded', bundles);

  // The file queue's durability (local/queue.ts); on RabbitMQ that is RabbitMQ's own (an unacknowledged
  // message goes back to its queue), and the runtime killed with SIGKILL takes its data plane along.
  it('delivers after a SIGKILL the event it had accepted, and the pipeline finishes with one MP3 and one email', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const env = { CONVERT_LEASE_SECONDS: '2' };
    const first = await startRuntime(bundles, data, env);
    const video = await makeVideo(join(dir, 'v.mp4'), { seconds: 3 });
    const id = await upload(first, video, 'v.mp4');
    first.child.kill('SIGKILL'); // the event is accepted (upload answered 202) but convert has not replied
    await once(first.child, 'exit');
    expect(first.lines.some((l) => l.msg === 'delivered' && String(l.eventId).startsWith(id))).toBe(false);

    const second = await startRuntime(bundles, data, env);
    expect(second.ready.recovered).toBeGreaterThanOrEqual(1);
    await waitForJob(second, id, 'converted');
    expect(await mailsFor(second, id, 1)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(await mailsFor(second, id, 2, 0)).toHaveLength(1);
    const mp3s = (await readdir(join(data, 'store', 'media', 'mp3s'))).filter((f) => f.startsWith(id) && !f.endsWith('.json'));
    expect(mp3s).toHaveLength(1);
  });

  // The activator's, whichever broker delivers.
  it('stops functions idle past the period, and starts them again on the next request', async () => {
    const dir = await tempDir();
    const rt = await startRuntime(bundles, join(dir, 'data'), { EARSHOT_IDLE_SECONDS: '1' });
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

describeWithService('RabbitMQ and eventing-rabbitmq\'s ingress and dispatcher', await dataPlaneAvailable(), 'make dev with EARSHOT_BROKER=rabbitmq', () => {
  endToEnd('rabbitmq', bundles);
});
