/**
 * One function as Knative serves it, on this machine: each request goes to an instance with room
 * for it (at most `containerConcurrency` requests each); when none has room, another instance is
 * started, as Knative scales out, up to `maxInstances`; beyond that requests queue, first come
 * first served. A request that starts an instance waits for it, as Knative's activator makes it
 * wait, and each instance stops after its own idle period, down to zero.
 */
import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Problem } from '../shared/problem';
import { Instance, type InstanceOptions } from './instance';

export interface ActivatorOptions extends InstanceOptions {
  /** Requests at once per instance; 0: no limit, so one instance takes them all. */
  containerConcurrency: number;
  /** The most instances at once (at least one). */
  maxInstances: number;
  idleMs: number;
}

export class Activator {
  /** Started or starting, oldest first. */
  private instances: Instance[] = [];
  private stopping = new Set<Promise<void>>();
  private waiting: ((instance: Instance) => void)[] = [];
  /** Cold starts so far, for tests. */
  starts = 0;

  constructor(private readonly options: ActivatorOptions) {}

  get running(): boolean {
    return this.instances.some((i) => i.port !== undefined);
  }

  /** Instances started or starting. */
  get size(): number {
    return this.instances.length;
  }

  /** Requests waiting for room. */
  get queued(): number {
    return this.waiting.length;
  }

  /** The Node HTTP handler that stands where the function's URL is. */
  handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const instance = await this.admit(res);
    if (!instance) return; // the client left while queued
    let upstream: ClientRequest | undefined;
    // Whatever happens next, the place is given up when the exchange ends, the client's leaving included.
    res.once('close', () => {
      upstream?.destroy();
      this.release(instance);
    });
    let port: number;
    try {
      port = await instance.ready;
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

  /** Stops the instances with nothing in flight; busy ones end with make dev (their IPC channel closes). */
  async stop(): Promise<void> {
    for (const instance of this.instances.filter((i) => i.active === 0)) this.retire(instance, 'stopped');
    await Promise.all(this.stopping);
  }

  /**
   * A place on an instance, or none when the client goes away while queued: a waiter left in the
   * queue would take a place that no exchange would ever give back.
   */
  private admit(res: ServerResponse): Promise<Instance | undefined> {
    const instance = this.place();
    if (instance) return Promise.resolve(instance);
    return new Promise((resolve) => {
      const turn = (given: Instance) => {
        res.off('close', gone);
        resolve(given);
      };
      const gone = () => {
        this.waiting = this.waiting.filter((w) => w !== turn);
        resolve(undefined);
      };
      this.waiting.push(turn);
      res.once('close', gone);
    });
  }

  /** Takes a place on the oldest instance with room, else on a new one if another may start. */
  private place(): Instance | undefined {
    const { containerConcurrency: limit, maxInstances } = this.options;
    // Oldest first: the newest are the ones left idle, to stop one by one.
    let instance = this.instances.find((i) => limit === 0 || i.active < limit);
    if (!instance && this.instances.length < (limit === 0 ? 1 : Math.max(1, maxInstances))) instance = this.startInstance();
    if (!instance) return undefined;
    instance.active++;
    clearTimeout(instance.idleTimer);
    return instance;
  }

  private release(instance: Instance): void {
    instance.active--;
    // Queued requests take whatever room there is now, first come first served.
    while (this.waiting.length > 0) {
      const given = this.place();
      if (!given) break;
      this.waiting.shift()!(given);
    }
    if (instance.active === 0 && this.instances.includes(instance)) {
      instance.idleTimer = setTimeout(() => this.retire(instance, 'idle'), this.options.idleMs);
      instance.idleTimer.unref();
    }
  }

  private startInstance(): Instance {
    const instance = new Instance(this.options, (exited) => this.remove(exited));
    this.instances.push(instance);
    instance.ready.then(
      () => this.starts++,
      () => this.remove(instance),
    );
    return instance;
  }

  private remove(instance: Instance): void {
    clearTimeout(instance.idleTimer);
    this.instances = this.instances.filter((i) => i !== instance);
  }

  private retire(instance: Instance, reason: 'idle' | 'stopped'): void {
    this.remove(instance);
    const stopped = instance.stop().then(() => {
      this.stopping.delete(stopped);
      const left = this.instances.length;
      const msg = reason === 'stopped' ? 'stopped' : left === 0 ? 'scaled to zero' : 'scaled down';
      this.options.log.info(msg, { function: this.options.name, instances: left });
    });
    this.stopping.add(stopped);
  }
}
