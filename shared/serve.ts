import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { answerClientError } from './client-error';
import { ConfigError, envReader, type Env } from './config';
import { createLogger, type Logger } from './log';

export interface Running {
  fetch: (request: Request) => Response | Promise<Response>;
  close?: () => Promise<void>;
  /** Called as the drain begins: ends answers that would otherwise never finish (event streams). */
  drain?: () => void;
  /** What the function chose at start, told on its 'listening' line (convert: its ffmpeg). */
  started?: Record<string, unknown>;
}

/**
 * The entry of every function bundle: validates configuration (exiting with a message that
 * names the bad variable), serves on `$PORT`, and on SIGTERM stops accepting, lets in-flight
 * requests finish, closes the stores, then exits.
 */
export async function runFunction(name: string, start: (env: Env, log: Logger) => Promise<Running>): Promise<void> {
  const env = process.env;
  const log = createLogger({ fn: name }, { level: env.LOG_LEVEL });
  let running: Running;
  let port: number;
  let drainMs: number;
  try {
    const read = envReader(env);
    port = read.int('PORT', 8080, { min: 0, max: 65535 });
    drainMs = read.int('SHUTDOWN_TIMEOUT_SECONDS', 30, { min: 1 }) * 1000;
    running = await start(env, log);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.error('invalid configuration', { variable: err.variable, detail: err.message });
    process.exit(78); // EX_CONFIG
  }

  const server = serve({ fetch: running.fetch, port, hostname: env.HOST ?? '0.0.0.0' }, (info) =>
    log.info('listening', { port: info.port, ...running.started }),
  ) as Server;
  server.on('clientError', answerClientError(log));
  // Not serving at all (the port is taken) is no request's fault: exit, to be restarted.
  server.on('error', (err) => {
    log.error('server failed', { err });
    process.exit(1);
  });
  // The last guard of "no input ends a process": an error no handler caught (a stream's 'error'
  // nobody listened to) costs at most the request it came from, not every other in flight.
  // It is still a bug: logged at error level with its stack, to be found and fixed. Installed
  // only now, so that a failure to start still exits.
  process.on('uncaughtException', (err, origin) => log.error('uncaught exception; still serving', { err, origin }));
  // Logs go to stdout: once nobody reads it (the parent died, EPIPE), logging that error would
  // raise another, and the guard above would spin on it. There is no one left to serve: exit.
  process.stdout.on('error', () => process.exit(1));

  const shutdown = (signal: string) => {
    log.info('draining', { signal });
    running.drain?.();
    setTimeout(() => {
      log.warn('drain timed out; exiting with requests in flight', { afterMs: drainMs });
      process.exit(1);
    }, drainMs).unref();
    // Connections of finished requests go idle during the drain; close them as they do.
    setInterval(() => server.closeIdleConnections(), 100).unref();
    server.close(async () => {
      try {
        await running.close?.();
      } catch (err) {
        log.error('stores did not close', { err });
        process.exit(1);
      }
      log.info('stopped');
      process.exit(0);
    });
  };
  // Started by the local runtime (with an IPC channel): die with it, even when it is killed.
  if (process.channel) process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
