/**
 * Knative's ping adapter for `make dev`: each PingSource of the manifests sends its CloudEvent, in
 * binary mode, to its sink at each time its cron schedule gives (or every `everySeconds`, for tests
 * and demos), and logs the answer. Nothing is retried or made up for: a missed ping waits for the next.
 */
import { randomUUID } from 'node:crypto';
import { CronExpressionParser } from 'cron-parser';
import type { Logger } from '../shared/log';
import type { PingSourceSpec } from './topology';

export const pingEventType = 'dev.knative.sources.ping';

/** setTimeout's longest delay; a later firing is waited for in steps. */
const maxDelayMs = 2 ** 31 - 1;

export interface PingOptions {
  sources: PingSourceSpec[];
  /** The URL of a Service. */
  resolve(name: string): string;
  /** How long the sink may take to answer. */
  timeoutMs(name: string): number;
  log: Logger;
  /** Instead of the schedules. */
  everySeconds?: number;
}

/** The first time after `after` that the source's schedule gives. */
export function nextFiring(source: PingSourceSpec, after: Date): Date {
  return CronExpressionParser.parse(source.schedule, { currentDate: after, tz: source.timezone ?? 'UTC' }).next().toDate();
}

/** The event the ping adapter sends for `source` at `time`, as the request's headers and body. */
export function pingRequest(source: PingSourceSpec, time: Date): { headers: Record<string, string>; body: string } {
  return {
    headers: {
      'ce-specversion': '1.0',
      'ce-type': pingEventType,
      'ce-source': `/apis/v1/namespaces/${source.namespace}/pingsources/${source.name}`,
      'ce-id': randomUUID(),
      'ce-time': time.toISOString(),
      ...(source.contentType && { 'content-type': source.contentType }),
    },
    body: source.data ?? '',
  };
}

/** Starts every source's timer; `stop` clears them and waits for pings under way. */
export function startPings(options: PingOptions): { stop(): Promise<void> } {
  // Throws on a schedule cron-parser cannot read, before anything starts.
  for (const source of options.sources) nextFiring(source, new Date());
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<void>>();
  let stopped = false;

  const arm = (source: PingSourceSpec) => {
    if (stopped) return;
    const due = options.everySeconds ? new Date(Date.now() + options.everySeconds * 1000) : nextFiring(source, new Date());
    const wait = () => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (Date.now() < due.getTime()) return wait();
        const sent = send(source, due, options).finally(() => inFlight.delete(sent));
        inFlight.add(sent);
        arm(source);
      }, Math.min(Math.max(due.getTime() - Date.now(), 0), maxDelayMs));
      timers.add(timer);
    };
    wait();
  };
  for (const source of options.sources) arm(source);

  return {
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all(inFlight);
    },
  };
}

async function send(source: PingSourceSpec, time: Date, { resolve, timeoutMs, log }: PingOptions): Promise<void> {
  const { headers, body } = pingRequest(source, time);
  const fields = { pingSource: source.name, sink: source.sink, eventId: headers['ce-id'], time: headers['ce-time'] };
  try {
    const res = await fetch(resolve(source.sink), { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs(source.sink)) });
    await res.body?.cancel();
    (res.ok ? log.info : log.warn).call(log, 'pinged', { ...fields, status: res.status });
  } catch (err) {
    log.warn('ping failed', { ...fields, error: (err as Error).message });
  }
}
