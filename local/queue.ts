/**
 * The broker's queueing, behind one small interface so that a RabbitMQ-backed queue (an
 * exchange per broker, a queue per Trigger bound on its filter) can take the place of this
 * one. Here each Trigger's queue is a folder of JSON files: an event is written before the
 * ingress answers, and removed only once its delivery is settled, so a crash loses nothing.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TriggerSpec } from './topology';

/** A CloudEvent in binary content mode: `ce-*` headers (and content-type), the data as base64. */
export interface StoredEvent {
  headers: Record<string, string>;
  body: string;
}

export interface QueuedMessage {
  id: string;
  event: StoredEvent;
}

export interface BrokerQueue {
  /** Durably routes the event to the queue of every Trigger whose filter matches; resolves to how many. */
  publish(event: StoredEvent): Promise<number>;
  /**
   * Hands each message of the Trigger's queue to `handle`, at most `parallelism` at once. A
   * message is removed when `handle` resolves; one whose handling never finished (the process
   * died) is handed out again on the next start.
   */
  consume(trigger: TriggerSpec, handle: (message: QueuedMessage) => Promise<void>): void;
  /** Messages waiting or in flight, per Trigger. */
  depth(): Record<string, number>;
  close(): Promise<void>;
}

/** Knative's filter: every attribute named must equal the event's, exactly. */
export function matches(filter: Record<string, string>, event: StoredEvent): boolean {
  return Object.entries(filter).every(([attribute, value]) => {
    const header = attribute === 'datacontenttype' ? 'content-type' : `ce-${attribute}`;
    return event.headers[header] === value;
  });
}

interface Waiting {
  file: string;
  /** Kept from publish, so a message published by this process is not read back from disk. */
  event?: StoredEvent;
}

interface TriggerQueue {
  dir: string;
  waiting: Waiting[];
  inFlight: Set<string>;
  consumer?: { handle: (message: QueuedMessage) => Promise<void>; parallelism: number };
}

export async function fileQueue(root: string, triggers: TriggerSpec[], { retryFailedHandlerMs = 1000 } = {}): Promise<BrokerQueue> {
  const queues = new Map<string, TriggerQueue & { trigger: TriggerSpec }>();
  let seq = 0;
  let closed = false;
  for (const trigger of triggers) {
    const dir = join(root, trigger.name);
    await mkdir(dir, { recursive: true });
    const waiting = (await readdir(dir))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((file) => ({ file }));
    queues.set(trigger.name, { trigger, dir, waiting, inFlight: new Set() });
  }

  const pump = (queue: TriggerQueue) => {
    const consumer = queue.consumer;
    if (!consumer || closed) return;
    while (queue.inFlight.size < consumer.parallelism && queue.waiting.length > 0) {
      const entry = queue.waiting.shift()!;
      const { file } = entry;
      queue.inFlight.add(file);
      void (async () => {
        const path = join(queue.dir, file);
        let event = entry.event;
        if (!event) {
          try {
            event = JSON.parse(await readFile(path, 'utf8')) as StoredEvent;
          } catch {
            // Cut short by a crash while the ingress was writing it: the ingress never said 202
            // for it, so its sender still has it. Nothing to deliver.
            await remove(path);
            queue.inFlight.delete(file);
            pump(queue);
            return;
          }
        }
        try {
          await consumer.handle({ id: file.replace(/\.json$/, ''), event });
          await remove(path);
          queue.inFlight.delete(file);
        } catch {
          // The handler could not settle it (say, the dead-letter sink was down): keep it, try later.
          setTimeout(() => {
            queue.inFlight.delete(file);
            queue.waiting.unshift({ file, event });
            pump(queue);
          }, retryFailedHandlerMs).unref();
          return;
        }
        pump(queue);
      })();
    }
  };

  return {
    async publish(event) {
      const targets = [...queues.values()].filter((q) => matches(q.trigger.filter, event));
      // Names sort in arrival order: a timestamp, then a counter for the same millisecond.
      const name = `${Date.now().toString().padStart(14, '0')}-${String(seq++ % 1e6).padStart(6, '0')}-${randomUUID().slice(0, 8)}.json`;
      const text = JSON.stringify(event);
      await Promise.all(targets.map((q) => writeFile(join(q.dir, name), text, { flag: 'wx' })));
      for (const q of targets) {
        q.waiting.push({ file: name, event });
        pump(q);
      }
      return targets.length;
    },

    consume(trigger, handle) {
      const queue = queues.get(trigger.name);
      if (!queue) throw new Error(`no queue for trigger ${trigger.name}`);
      queue.consumer = { handle, parallelism: Math.max(1, trigger.parallelism) };
      pump(queue);
    },

    depth() {
      return Object.fromEntries([...queues].map(([name, q]) => [name, q.waiting.length + q.inFlight.size]));
    },

    async close() {
      closed = true;
    },
  };
}

/** unlink, not rm: one trip through the thread pool instead of two (rm stats first); gone already is fine. */
async function remove(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
