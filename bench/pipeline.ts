/**
 * B4: a clip through `make dev`'s runtime, from upload accepted (202) to its email in the outbox,
 * against the convert step's own time for it: what the broker, the hops and notify add. The
 * broker delivers to convert as soon as it has the event, which can be before the client has
 * read its 202, so a tiny overhead can come out just below zero.
 */
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, mkdir } from 'node:fs/promises';
import { watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRuntime } from '../test/runtime';
import { benchVideo } from './inputs';
import { median, type Row } from './measure';

export async function benchPipeline({ seconds, runs }: { seconds: number; runs: number }): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-bench-pipeline-'));
  const { child, ready, lines, token } = await startRuntime(dir, { EARSHOT_IDLE_SECONDS: '600' });
  try {
    const video = new Uint8Array(await readFile(await benchVideo(seconds)));
    await mkdir(ready.outbox, { recursive: true });

    const once_ = async () => {
      const form = new FormData();
      form.append('file', new Blob([video]), 'clip.mp4');
      // The outbox is watched from before the upload, so the email's arrival is seen at once.
      let videoId: string | undefined;
      let arrived!: (at: number) => void;
      const mailed = new Promise<number>((resolve) => (arrived = resolve));
      const check = async () => {
        const at = performance.now();
        if (videoId && (await readdir(ready.outbox)).some((f) => f.includes(videoId!))) arrived(at);
      };
      const watcher = watch(ready.outbox, () => void check());
      const res = await fetch(`${ready.functions.upload}/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` } });
      const accepted = performance.now();
      if (res.status !== 202) throw new Error(`upload answered ${res.status}`);
      videoId = ((await res.json()) as { videoId: string }).videoId;
      await check();
      const total = (await mailed) - accepted;
      watcher.close();
      const convertLine = await waitFor(() => lines.find((l) => l.fn === 'convert' && l.msg === 'request' && String(l.eventId).startsWith(videoId)));
      if ((await readdir(ready.outbox)).filter((f) => f.includes(videoId)).length !== 1) throw new Error('expected one email');
      return { total, convert: convertLine.ms as number };
    };

    await once_(); // warm: every function started once, as a deployment that has served before
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await once_());
    const total = median(results.map((r) => r.total));
    const convert = median(results.map((r) => r.convert));
    const overhead = median(results.map((r) => r.total - r.convert));
    return {
      id: 'B4',
      measure: `pipeline overhead, ${seconds}-s clip via make dev (upload accepted → email)`,
      value: overhead,
      unit: 'ms',
      baseline: { name: 'convert step', value: convert },
      target: '≤ 100 ms',
      met: overhead <= 100,
      note: `end to end ${total.toFixed(0)} ms`,
    };
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitFor<T>(find: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const found = find();
    if (found) return found;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
