/** B2: spawn of a function bundle until its first 200 on /healthz, against `node -e 0`. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { interleaved, time, type Row } from './measure';

const extraEnv: Record<string, Record<string, string>> = {
  upload: { K_SINK: 'http://127.0.0.1:9/' },
  deadletter: { K_SINK: 'http://127.0.0.1:9/' },
  notify: { DOWNLOAD_URL: 'http://127.0.0.1:9' },
  web: { LOGIN_URL: 'http://127.0.0.1:9', UPLOAD_URL: 'http://127.0.0.1:9', DOWNLOAD_URL: 'http://127.0.0.1:9' },
};

async function coldStart(name: string, dataDir: string): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [`dist/${name}.js`], {
    env: { PATH: process.env.PATH!, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...extraEnv[name] },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === 'listening') resolve(entry.port!);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  if (res.status !== 200) throw new Error(`${name} /healthz answered ${res.status}`);
  const ms = performance.now() - started;
  child.kill('SIGTERM');
  await once(child, 'exit');
  return ms;
}

export async function benchColdStarts({ names, runs }: { names: string[]; runs: number }): Promise<Row[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'earshot-bench-cold-'));
  try {
    await coldStart('login', dataDir); // makes the local key once, outside the measurements
    const rows: Row[] = [];
    for (const name of names) {
      const nodeOnly = () => time(async () => once(spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }), 'exit'));
      const m = await interleaved(runs, nodeOnly, () => coldStart(name, dataDir));
      const ratio = m.subject / m.baseline;
      rows.push({
        id: 'B2',
        measure: `cold start: ${name}`,
        value: m.subject,
        unit: 'ms',
        baseline: { name: 'node -e 0', value: m.baseline },
        ratio,
        target: '≤ 100 ms, ≤ 1.7×',
        met: m.subject <= 100 && ratio <= 1.7,
      });
    }
    return rows;
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}
