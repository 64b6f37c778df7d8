/**
 * A RabbitMQ node of a test's own, beside the one `make services` runs: made by the same script
 * (tools/services.sh, with its directory, node name and ports moved), so a test may stop and
 * restart it without touching the node other suites use.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { managementApi } from '../local/dataplane';

export interface RabbitmqNode {
  amqpUrl: string;
  managementUrl: string;
  up(): Promise<void>;
  /** `rabbitmqctl stop`: waits until the node has exited. */
  down(): Promise<void>;
  /** GET on the management API, as the local-development user. */
  api<T>(path: string, init?: RequestInit): Promise<T>;
}

const user = 'earshot';
const password = 'earshot-local-dev'; // tools/services.sh: local development only

/** `offset` moves every port (AMQP 5673, management 15673, distribution 25673, epmd 4371) by that much. */
export function rabbitmqNode(dir: string, offset: number): RabbitmqNode {
  const port = (base: number) => String(base + offset);
  const env = {
    ...process.env,
    RABBITMQ_DIR: dir,
    RABBITMQ_NODE: `earshot-${offset}@localhost`,
    RABBITMQ_AMQP_PORT: port(5673),
    RABBITMQ_HTTP_PORT: port(15673),
    RABBITMQ_DIST_PORT: port(25673),
    RABBITMQ_EPMD_PORT: port(4371),
  };
  const services = (command: string) => promisify(execFile)('tools/services.sh', [command], { env }).then(() => undefined);
  const managementUrl = `http://127.0.0.1:${port(15673)}`;
  const amqpUrl = `amqp://${user}:${password}@127.0.0.1:${port(5673)}`;
  return {
    amqpUrl,
    managementUrl,
    up: () => services('rabbitmq-up'),
    down: () => services('rabbitmq-down'),
    async api<T>(path: string, init: RequestInit = {}) {
      const res = await managementApi(managementUrl, amqpUrl)(path, init);
      return (res.status === 204 ? undefined : await res.json()) as T;
    },
  };
}
