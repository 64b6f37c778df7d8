/**
 * One function as Knative runs it, on this machine: a process started on the first request
 * (which waits for it, as the activator makes requests wait), stopped after an idle period
 * (scale to zero), with at most `containerConcurrency` requests in flight (the rest queue).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import type { Logger } from '../shared/log';
import { Problem } from '../shared/problem';

export interface ActivatorOptions {
  name: string;
  /** What runs the function: `node <bundle>`, or podman running its image. It is given PORT and HOST in its env. */
  command: string[];
  env: Record<string, string>;
  /** 0: no limit. */
  containerConcurrency: number;
  idleMs: number;
  log: Logger;
  /** Where the function's own log lines go. */
  output?: (line: string) => void;
}

type State = { kind: 'stopped' } | { kind: 'starting'; ready: Promise<number> } | { kind: 'running'; port: number; child: ChildProcess } | { kind: 'stopping'; exited: Promise<void> };

export class Activator {
  private state: State = { kind: 'stopped' };
  private child?: ChildProcess;
  private active = 0;
  private waiting: (() => void)[] = [];
  private idleTimer?: NodeJS.Timeout;
  /** Cold starts so far, for the log and for tests. */
  starts = 0;

  constructor(private readonly options: ActivatorOptions) {}

  get running(): boolean {
    return this.state.kind === 'running';
  }

  /** The Node HTTP handler that stands where the function's URL is. */
  handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    clearTimeout(this.idleTimer);
    if (!(await this.admit(res))) return; // the client left while queued
    let upstream: ClientRequest | undefined;
    // Whatever happens next, the place is given up when the exchange ends, the client's leaving included.
    res.once('close', () => {
      upstream?.destroy();
      this.release();
    });
    let port: number;
    try {
      port = await this.ensureStarted();
    } catch (err) {
      const problem = new Problem({ status: 502, title: 'Bad Gateway', detail: `${this.options.name} did not start: ${(err as Error).message}` });
      const response = problem.toResponse();
      res.writeHead(response.status, Object.fromEntries(response.headers)).end(await response.text());
      return;
    }
    if (res.closed) return; // the client left during the cold start
    upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`${this.options.name}: ${err.message}`);
    });
    req.pipe(upstream);
  };

  async stop(): Promise<void> {
    clearTimeout(this.idleTimer);
    if (this.state.kind === 'starting') await this.state.ready.catch(() => undefined);
    if (this.state.kind === 'running') await this.scaleToZero('shutdown');
    else if (this.state.kind === 'stopping') await this.state.exited;
  }

  /**
   * A place among `containerConcurrency`, or false when the client goes away while queued: a
   * waiter left in the queue would take a place that no exchange would ever give back.
   */
  private admit(res: ServerResponse): Promise<boolean> {
    const limit = this.options.containerConcurrency;
    if (limit === 0 || this.active < limit) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const turn = () => {
        res.off('close', gone);
        this.active++;
        resolve(true);
      };
      const gone = () => {
        this.waiting = this.waiting.filter((w) => w !== turn);
        resolve(false);
      };
      this.waiting.push(turn);
      res.once('close', gone);
    });
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
    if (this.active === 0 && this.waiting.length === 0) {
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => void this.scaleToZero('idle'), this.options.idleMs);
      this.idleTimer.unref();
    }
  }

  private async ensureStarted(): Promise<number> {
    for (;;) {
      const state = this.state;
      if (state.kind === 'running') return state.port;
      if (state.kind === 'starting') return state.ready;
      if (state.kind === 'stopping') {
        await state.exited;
        continue;
      }
      const ready = this.spawn();
      this.state = { kind: 'starting', ready };
      ready.catch(() => (this.state = { kind: 'stopped' }));
      return ready;
    }
  }

  private spawn(): Promise<number> {
    const { name, command: [file, ...args], env, log, output = (line) => process.stdout.write(`${line}\n`) } = this.options;
    const started = performance.now();
    const child = spawn(file!, args, {
      env: { ...env, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    this.child = child;
    return new Promise((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        output(line);
        if (this.state.kind !== 'starting') return;
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number; variable?: string; detail?: string };
          if (entry.msg === 'listening' && entry.port) {
            this.starts++;
            this.state = { kind: 'running', port: entry.port, child };
            log.info('cold start', { function: name, ms: Math.round(performance.now() - started) });
            resolve(entry.port);
          }
          if (entry.msg === 'invalid configuration') reject(new Error(entry.detail ?? 'invalid configuration'));
        } catch {
          // not a JSON line: passed through as it is
        }
      });
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        reject(new Error(`exited with ${code ?? signal} before it was ready`));
        if (this.state.kind === 'running' && this.state.child === child) {
          log.warn('function exited', { function: name, code, signal });
          this.state = { kind: 'stopped' };
        }
      });
    });
  }

  private async scaleToZero(reason: 'idle' | 'shutdown'): Promise<void> {
    const state = this.state;
    if (state.kind !== 'running' || this.active > 0) return;
    const exited = new Promise<void>((resolve) => state.child.once('exit', () => resolve()));
    this.state = { kind: 'stopping', exited };
    state.child.kill('SIGTERM');
    await exited;
    this.state = { kind: 'stopped' };
    this.options.log.info(reason === 'idle' ? 'scaled to zero' : 'stopped', { function: this.options.name });
  }
}
