import { cp, writeFile } from 'node:fs/promises';
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
});
