/**
 * eventing-rabbitmq's real data plane for the benchmarks, on `make services`' RabbitMQ node:
 * whether it is there, one of the bench's own in front of a stand-in subscriber, and removing
 * the vhosts the benchmarks leave.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { localDefaults, managementApi, startDataPlane } from '../local/dataplane';
import { readTopology } from '../local/topology';
import { createLogger } from '../shared/log';
import { benchDir } from './inputs';
import { freePort } from '../test/support';

export const noRabbitmq = 'no RabbitMQ (make services)';

const management = managementApi();

/** Its exchanges and queues go with it; a vhost that is not there is fine. */
export async function deleteVhost(vhost: string): Promise<void> {
  await management(`/api/vhosts/${encodeURIComponent(vhost)}`, { method: 'DELETE' }).catch((err: Error) => {
    if (!err.message.endsWith(': 404')) throw err;
  });
}

/**
 * Until the queues hold nothing, acknowledgements included (at most 15 s): a dispatcher stopped
 * between a 202 and its ack logs a failed delivery that was none. The management API's counts
 * lag by up to its statistics interval (5 s), and are missing until then.
 */
async function drained(vhost: string): Promise<void> {
  for (const end = Date.now() + 15_000; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
    const queues = (await (await management(`/api/queues/${encodeURIComponent(vhost)}?columns=messages`)).json()) as { messages?: number }[];
    if (queues.every((q) => q.messages === 0)) return;
  }
}

/**
 * The ingress and a dispatcher per queue for the repository's manifests (the Triggers' own
 * parallelism and delivery), in the vhost earshot-bench-<pid>, with every subscriber and
 * dead-letter sink at `subscriber`. stop() also deletes the vhost.
 */
export async function startRealBroker(subscriber: string): Promise<{ url: string; pids(): number[]; processes: string; stop(): Promise<void> }> {
  const { broker, triggers } = readTopology();
  const sinks = [broker.delivery.deadLetterSink, ...triggers.flatMap((t) => [t.subscriber, t.delivery.deadLetterSink])];
  const subscribers = Object.fromEntries(sinks.flatMap((name) => (name ? [[name, subscriber]] : [])));
  const vhost = `earshot-bench-${process.pid}`;
  await deleteVhost(vhost); // queues an interrupted run left would be counted
  // Warnings to stderr, beside the bench's progress: the table on stdout stays clean.
  const log = createLogger({ fn: 'bench-dataplane' }, { level: 'warn', write: (line) => process.stderr.write(`${line}\n`) });
  const plane = await startDataPlane({ repo: '.', dataDir: benchDir, ingressPort: await freePort(), subscribers, log, vhost }).catch(async (err: unknown) => {
    await deleteVhost(vhost);
    throw err;
  });
  const rabbitmq = rabbitmqPid();
  return {
    url: plane.url,
    /** Its ingress and dispatchers, and the RabbitMQ node when its PID is known (the whole node's CPU time is counted as this broker's). */
    pids: () => [...Object.values(plane.pids()), ...(rabbitmq ? [rabbitmq] : [])],
    processes: rabbitmq ? 'ingress, dispatchers and RabbitMQ' : 'ingress and dispatchers; RabbitMQ not found',
    stop: async () => {
      await drained(vhost).catch(() => undefined);
      await plane.stop();
      await deleteVhost(vhost);
    },
  };
}

/** The PID of make services' RabbitMQ node (its Erlang VM), from its pid file; undefined when that is not it. */
function rabbitmqPid(): number | undefined {
  try {
    const pid = Number(readFileSync(join(localDefaults.bin, '..', 'rabbitmq', 'rabbitmq.pid'), 'utf8').trim());
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('rabbit') ? pid : undefined;
  } catch {
    return undefined;
  }
}
