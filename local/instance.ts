/**
 * One instance of a function, as one pod of its Knative Service: a process started at once,
 * ready when it logs that it listens, stopped by SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../shared/log';

export interface InstanceOptions {
  name: string;
  /** What runs the function: `node <bundle>`, or podman running its image. It is given PORT and HOST in its env. */
  command: string[];
  env: Record<string, string>;
  log: Logger;
  /** Where the function's own log lines go. */
  output?: (line: string) => void;
}

export class Instance {
  /** The port it listens on, once it does. */
  readonly ready: Promise<number>;
  port?: number;
  /** Requests given to it and not yet answered. */
  active = 0;
  idleTimer?: NodeJS.Timeout;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private stopping = false;

  /** `onExit` is told when it exits after it was ready, unless it was told to stop. */
  constructor(options: InstanceOptions, onExit: (instance: Instance) => void) {
    const { name, command: [file, ...args], env, log, output = (line) => process.stdout.write(`${line}\n`) } = options;
    const started = performance.now();
    this.child = spawn(file!, args, {
      env: { ...env, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.ready = new Promise((resolve, reject) => {
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        output(line);
        if (this.port !== undefined) return;
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number; detail?: string };
          if (entry.msg === 'listening' && entry.port) {
            this.port = entry.port;
            log.info('cold start', { function: name, ms: Math.round(performance.now() - started) });
            resolve(entry.port);
          }
          if (entry.msg === 'invalid configuration') reject(new Error(entry.detail ?? 'invalid configuration'));
        } catch {
          // not a JSON line: passed through as it is
        }
      });
      this.child.once('exit', (code, signal) => {
        reject(new Error(`exited with ${code ?? signal} before it was ready`));
        if (this.port !== undefined && !this.stopping) {
          log.warn('function exited', { function: name, code, signal });
          onExit(this);
        }
      });
    });
    // One that never got ready (an invalid configuration, say) is not left behind.
    this.ready.catch(() => this.child.kill('SIGTERM'));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.idleTimer);
    this.child.kill('SIGTERM');
    await this.exited;
  }
}
