import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('a function process', () => {
  let child: ChildProcess;
  let url: string;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', 'shared/serve.fixture.ts'], {
      env: { PATH: process.env.PATH!, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        if (entry.msg === 'listening') resolve(entry.port as number);
      });
      child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
    });
    url = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  });

  it.each([
    ['an error event nobody listened to', '/stray-error', 'a stream nobody listened to'],
    ['a rejection nobody awaited', '/stray-rejection', 'a promise nobody awaited'],
  ])('survives %s, logs it as an error with its stack, and keeps serving', async (_what, path, message) => {
    expect((await fetch(`${url}${path}`)).status).toBe(200);
    const logged = async () => lines.find((line) => line.msg === 'uncaught exception; still serving' && (line.err as { message: string }).message === message);
    for (let i = 0; i < 50 && !(await logged()); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await logged()).toMatchObject({ level: 'error', err: { stack: expect.stringContaining(message) } });
    expect(child.exitCode).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('answers what Node refuses itself as problem+json', async () => {
    const res = await fetch(`${url}/healthz`, { headers: { 'x-big': 'a'.repeat(20_000) } });
    expect(res.status).toBe(431);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('still drains and exits 0 on SIGTERM, ending the answers that never end by themselves', async () => {
    const stream = await fetch(`${url}/until-drained`);
    const reader = stream.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('open\n');
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    while (!(await reader.read()).done);
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
  });
});
