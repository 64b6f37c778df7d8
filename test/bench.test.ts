/** Every benchmark, on tiny inputs: they run and report numbers (which are not judged here). */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { benchBroker } from '../bench/broker';
import { benchColdStarts } from '../bench/coldstart';
import { benchConvert } from '../bench/convert';
import { benchLoginFlood } from '../bench/login-flood';
import type { Row } from '../bench/measure';
import { table } from '../bench/measure';
import { benchPipeline } from '../bench/pipeline';
import { dataPlaneAvailable } from '../local/dataplane';
import { benchRequests } from '../bench/requests';
import { benchSegments } from '../bench/segments';
import { benchStreaming } from '../bench/streaming';
import { ffmpegPath } from './media';
import { describeWithService } from './services';

/** `signed`: differences (value, and baseline and ratio) that may come out just below zero (B4: convert can start before the client sees 202). */
const reported = (rows: Row | Row[], { signed = false } = {}) => {
  for (const row of [rows].flat()) {
    expect(row.note ?? '').not.toMatch(/^failed/);
    expect(Number.isFinite(row.value), `${row.measure}: ${row.value}`).toBe(true);
    if (!signed) expect(row.value).toBeGreaterThan(0);
    if (row.baseline && !signed) expect(row.baseline.value).toBeGreaterThan(0);
    if (row.ratio !== undefined && !signed) expect(row.ratio).toBeGreaterThan(0);
    expect(table([row])).toContain(row.measure);
  }
};

describe('benchmarks, smoke run', () => {
  it('B1 convert against the ffmpeg command', async () => reported(await benchConvert({ seconds: 2, runs: 1, ffmpegPath: ffmpegInstaller.path, label: 'smoke' })));
  it('B2 cold start against node -e 0, every function', async () => {
    const names = readdirSync('functions').filter((name) => existsSync(join('functions', name, 'main.ts')));
    expect(names.length).toBeGreaterThanOrEqual(8);
    reported(await benchColdStarts({ names, runs: 1 }));
  });
  it('B3 streaming against a plain copy', async () => reported(await benchStreaming({ size: 4 * 1024 * 1024, runs: 1, label: 'smoke' })));
  it('B4 pipeline overhead', async () => reported(await benchPipeline({ seconds: 2, runs: 1 }), { signed: true }));
  it('B5 broker throughput against a minimal forwarder', async () => {
    const rows = await benchBroker({ events: 50, runs: 1 });
    expect(rows.map((r) => r.baseline?.name)).toEqual(['minimal Node HTTP forwarder']);
    reported(rows);
  });
  it('B6 requests per second', async () => reported(await benchRequests({ seconds: 1 })));
  it('B7 a video in stretches at once against the single pass', async () => {
    const row = await benchSegments({ seconds: 30, runs: 1, ffmpegPath, label: 'smoke', workers: 2 });
    reported(row);
    expect(row.measure).toContain('in 2 stretches');
    expect(row.note).toContain('decoded length the same as the single pass');
  });
  it('B9 login latency during a wrong-password flood', async () => reported(await benchLoginFlood({ logins: 1, clients: 2 })));
});

describeWithService("RabbitMQ and eventing-rabbitmq's ingress and dispatcher", await dataPlaneAvailable(), 'benchmarks on the real broker data plane, smoke run', () => {
  it('B4 pipeline with EARSHOT_BROKER=rabbitmq beside the embedded broker', async () => {
    const [embedded, real, ...more] = await benchPipeline({ seconds: 2, runs: 1, rabbitmq: true });
    expect(more).toEqual([]);
    expect(embedded!.baseline!.value).toBeGreaterThan(0); // the convert step
    expect(real!.baseline).toEqual({ name: 'embedded broker', value: embedded!.value });
    reported([embedded!, real!], { signed: true });
  });
  it('B5 the embedded broker against the real ingress and dispatcher and the forwarder', async () => {
    const rows = await benchBroker({ events: 50, runs: 1, rabbitmq: true });
    expect(rows.map((r) => r.baseline?.name)).toEqual(['minimal Node HTTP forwarder', 'RabbitMQ data plane']);
    reported(rows);
  });
});
