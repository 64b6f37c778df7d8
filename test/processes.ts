/** Function bundles started as processes, as Knative starts them: `node dist/<name>.js` with only its env. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

export interface StartedFunction {
  child: ChildProcess;
  url: string;
  lines: Record<string, unknown>[];
  /** The most memory the process has held (VmHWM), in bytes. */
  peakRss(): Promise<number>;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

export async function startBundle(name: string, env: Record<string, string>): Promise<StartedFunction> {
  const child = spawn(process.execPath, [`dist/${name}.js`], {
    env: { PATH: process.env.PATH!, PORT: '0', HOST: '127.0.0.1', ...env },
    // The IPC channel makes the function exit with this process, even if a test is cut short.
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const lines: Record<string, unknown>[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'listening') resolve(entry.port as number);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${JSON.stringify(lines)}`)));
  });
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    lines,
    async peakRss() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}
