/**
 * local/dataplane.ts's supervision without RabbitMQ: stand-ins for rabbitmq-topology (prints two
 * processes), the ingress (listens on PORT, ignores SIGTERM as the real one drains) and a
 * dispatcher (logs as Knative's zap does, and crashes on its first run), and for the management API.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../shared/log';
import { tempDir } from '../test/support';
import { DataPlaneUnavailable, dataPlaneProcesses, startDataPlane, vhostFor, type DataPlane } from './dataplane';

const script = async (path: string, body: string) => {
  await writeFile(path, `#!${process.execPath}\n${body}\n`);
  await chmod(path, 0o755);
};

async function standIns() {
  const bin = await tempDir('dataplane-');
  // Prints what tools/rabbitmq/main.go prints, for the -ingress and -vhost it is given.
  await script(join(bin, 'rabbitmq-topology'), `
    const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
    const bin = ${JSON.stringify(bin)}, vhost = arg('-vhost'), port = new URL(arg('-ingress')).port;
    const urls = process.argv.filter((a, i) => process.argv[i - 1] === '-url');
    console.log(JSON.stringify({ vhost, processes: [
      { name: 'earshot-broker-ingress', command: bin + '/rabbitmq-ingress', env: { RABBITMQ_VHOST: vhost }, localEnv: { PORT: port } },
      { name: 'convert-dispatcher', command: bin + '/rabbitmq-dispatcher', env: { RABBITMQ_VHOST: vhost, QUEUE_NAME: 'q', SUBSCRIBER: urls.join(' '), RUNS: bin + '/runs' } },
    ] }));`);
  await script(join(bin, 'rabbitmq-ingress'), `
    process.on('SIGTERM', () => console.log(JSON.stringify({ severity: 'INFO', message: 'draining' })));
    require('node:http').createServer((q, s) => s.end()).listen(Number(process.env.PORT), '127.0.0.1');`);
  await script(join(bin, 'rabbitmq-dispatcher'), `
    const fs = require('node:fs');
    const runs = Number(fs.existsSync(process.env.RUNS) ? fs.readFileSync(process.env.RUNS, 'utf8') : 0) + 1;
    fs.writeFileSync(process.env.RUNS, String(runs));
    console.log(JSON.stringify({ severity: 'INFO', message: 'starting to process messages', queue: process.env.QUEUE_NAME }));
    console.error(JSON.stringify({ severity: 'WARNING', message: 'failed to deliver to "' + process.env.SUBSCRIBER + '"' }));
    if (runs === 1) setTimeout(() => process.exit(3), 200); else setInterval(() => {}, 1000);`);
  return bin;
}

const servers: Server[] = [];
const planes: DataPlane[] = [];
afterEach(async () => {
  await Promise.all(planes.splice(0).map((p) => p.stop()));
  for (const s of servers.splice(0)) s.close();
});

async function listening(handler: Parameters<typeof createServer>[1] = (_, res) => res.end('[]')) {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('the data plane under make dev', () => {
  it('runs what topology prints, restarts a process that exits, and stops them all', async () => {
    const bin = await standIns();
    const management = `http://127.0.0.1:${await listening()}`;
    const log = memoryLogger();
    const ingressPort = await listening(); // a free port: taken back just below
    servers.pop()!.close();
    const dataDir = join(bin, 'data');
    const plane = await startDataPlane({ repo: '.', dataDir, ingressPort, subscribers: { convert: 'http://localhost:1234' }, log, managementUrl: management, bin });
    planes.push(plane);
    expect(plane).toMatchObject({ url: `http://127.0.0.1:${ingressPort}`, vhost: vhostFor(dataDir), pending: 0 });
    expect(Object.keys(plane.pids())).toEqual(['earshot-broker-ingress', 'convert-dispatcher']);

    // Subscriber URLs go to the Go programs as 127.0.0.1; their zap lines come back as ours, at their level.
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'warn', fn: 'convert-dispatcher', msg: 'failed to deliver to "convert=http://127.0.0.1:1234"' }));

    // The dispatcher's first run exits: it is started again, and the restart logged.
    for (const end = Date.now() + 60_000; (await readFile(join(bin, 'runs'), 'utf8')) !== '2'; await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > end) throw new Error('the dispatcher was not restarted');
    }
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'data-plane process exited; restarting', process: 'convert-dispatcher', code: 3 }));

    // Stop: SIGTERM, then SIGKILL for the ingress that drains instead; nothing of this vhost is left.
    expect((await dataPlaneProcesses(plane.vhost)).sort()).toEqual(Object.values(plane.pids()).sort());
    await plane.stop();
    expect(await dataPlaneProcesses(plane.vhost)).toEqual([]);
    expect(log.lines).toContainEqual(expect.objectContaining({ fn: 'earshot-broker-ingress', msg: 'draining' }));
  });

  it('kills what a runtime killed without setpriv left running for the same DATA_DIR', async () => {
    const bin = await standIns();
    const dataDir = join(bin, 'data');
    // Not its first run, so the stand-in stays up (a first run crashes on purpose, for the restart test).
    await writeFile(join(bin, 'runs'), '1');
    const orphan = spawn(join(bin, 'rabbitmq-dispatcher'), [], { env: { ...process.env, RABBITMQ_VHOST: vhostFor(dataDir), RUNS: join(bin, 'runs'), QUEUE_NAME: 'q' }, stdio: 'ignore' });
    const exited = once(orphan, 'exit');
    for (const end = Date.now() + 60_000; !(await dataPlaneProcesses(vhostFor(dataDir))).includes(orphan.pid!); await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > end) throw new Error('the stand-in did not start');
    }
    const log = memoryLogger();
    const management = `http://127.0.0.1:${await listening()}`;
    const ingressPort = await listening();
    servers.pop()!.close();
    planes.push(await startDataPlane({ repo: '.', dataDir, ingressPort, subscribers: {}, log, managementUrl: management, bin }));
    expect(await exited).toEqual([null, 'SIGKILL']);
    expect(log.lines).toContainEqual(expect.objectContaining({ msg: 'killed data-plane processes an earlier runtime left', pids: [orphan.pid] }));
  });

  it('says to run make services when the binaries or RabbitMQ are missing', async () => {
    const opts = { repo: '.', dataDir: '/nonexistent', ingressPort: 1, subscribers: {}, log: memoryLogger() };
    await expect(startDataPlane({ ...opts, bin: '/nonexistent' })).rejects.toThrow(DataPlaneUnavailable);
    await expect(startDataPlane({ ...opts, bin: '/nonexistent' })).rejects.toThrow(/run make services/);
    const bin = await standIns();
    await expect(startDataPlane({ ...opts, bin, managementUrl: 'http://127.0.0.1:1' })).rejects.toThrow(/does not answer.*run make services/);
  });

  it('refuses an EARSHOT_DATAPLANE_NETNS that does not exist, before starting anything', async () => {
    const bin = await standIns();
    const opts = { repo: '.', dataDir: join(bin, 'data'), ingressPort: 1, subscribers: {}, log: memoryLogger(), bin, netns: `earshot-none-${process.pid}` };
    await expect(startDataPlane(opts)).rejects.toThrow(/EARSHOT_DATAPLANE_NETNS=earshot-none-\d+: no such network namespace/);
  });
});
