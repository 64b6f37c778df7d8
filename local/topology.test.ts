import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/support';
import { readTopology } from './topology';

describe('readTopology', () => {
  it("reads the repository's PingSource: schedule, zone, body and the Service it pings", () => {
    expect(readTopology().pingSources).toEqual([
      { name: 'sweep', namespace: 'earshot', schedule: '*/15 * * * *', timezone: 'Etc/UTC', contentType: 'application/json', data: '{"task":"sweep"}', sink: 'sweeper' },
    ]);
  });

  it('leaves out what a PingSource does not set, and keeps the namespace it names', async () => {
    const root = await tempDir();
    for (const d of ['knative', 'eventing']) await cp(d, join(root, d), { recursive: true });
    await writeFile(
      join(root, 'eventing', 'pingsource.yaml'),
      ['apiVersion: sources.knative.dev/v1', 'kind: PingSource', 'metadata:', '  name: nightly', '  namespace: media', 'spec:', '  schedule: "0 3 * * *"', '  sink:', '    ref:', '      apiVersion: serving.knative.dev/v1', '      kind: Service', '      name: sweeper', ''].join('\n'),
    );
    expect(readTopology(root).pingSources).toEqual([{ name: 'nightly', namespace: 'media', schedule: '0 3 * * *', sink: 'sweeper' }]);
  });

  it("reads each Service's max-scale: the repository's, and 0 (no limit) when a Service sets none or \"0\"", async () => {
    const scale = (root?: string) => Object.fromEntries(readTopology(root).functions.map((f) => [f.name, f.maxScale]));
    expect(scale()).toMatchObject({ convert: 10, deadletter: 1, download: 10, login: 5, notify: 3, sweeper: 1, upload: 10, web: 3 });

    const root = await tempDir();
    for (const d of ['knative', 'eventing']) await cp(d, join(root, d), { recursive: true });
    const edit = async (file: string, from: RegExp, to: string) => {
      const path = join(root, 'knative', file);
      const text = await readFile(path, 'utf8');
      expect(text).toMatch(from);
      await writeFile(path, text.replace(from, to));
    };
    await edit('convert.yaml', /\n\s*autoscaling\.knative\.dev\/max-scale: "10"/, '');
    await edit('login.yaml', /max-scale: "5"/, 'max-scale: "0"');
    expect(scale(root)).toMatchObject({ convert: 0, login: 0, notify: 3 });
  });
});
