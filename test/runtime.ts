/** `make dev`'s runtime as a child process, logged in as its demo user: for the e2e tests and the pipeline benchmark. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface Runtime {
  child: ChildProcess;
  ready: {
    broker: string;
    /** EARSHOT_BROKER: the embedded broker, or RabbitMQ with eventing-rabbitmq's ingress and dispatchers. */
    brokerKind: 'embedded' | 'rabbitmq';
    /** rabbitmq: the runtime's vhost and its data-plane processes (name → PID at start-up). */
    vhost?: string;
    dataPlane?: Record<string, number>;
    functions: Record<string, string>;
    outbox: string;
    recovered: number;
  };
  /** Every JSON line it has logged so far. */
  lines: Record<string, unknown>[];
  token: string;
}

/**
 * `viaMake` runs `make dev` itself, in its own process group (stop it with `process.kill(-pid)`).
 * `env` reaches the runtime: EARSHOT_BROKER=rabbitmq runs it on the real broker data plane.
 */
export async function startRuntime(dataDir: string, env: Record<string, string> = {}, viaMake = false): Promise<Runtime> {
  const [command, args] = viaMake ? ['make', ['--no-print-directory', 'dev']] : [process.execPath, ['--import', 'tsx', 'local/runtime.ts']];
  const child = spawn(command as string, args as string[], {
    env: { ...process.env, DATA_DIR: dataDir, EARSHOT_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'ignore'],
    detached: viaMake,
  });
  const lines: Record<string, unknown>[] = [];
  const ready = await new Promise<Runtime['ready']>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'ready') resolve(entry as unknown as Runtime['ready']);
    });
    child.once('exit', (code) => reject(new Error(`runtime exited with ${code}`)));
  });
  const [email, password] = (await readFile(join(dataDir, 'demo-user.txt'), 'utf8')).trim().split('\n');
  const login = await fetch(`${ready.functions.login}/login`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}` },
  });
  if (login.status !== 200) throw new Error(`demo login answered ${login.status}`);
  const { token } = (await login.json()) as { token: string };
  return { child, ready, lines, token };
}
