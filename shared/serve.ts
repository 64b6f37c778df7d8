import { serve } from '@hono/node-server';
import { ConfigError, envReader, type Env } from './config';
import { createLogger, type Logger } from './log';

export interface Running {
  fetch: (request: Request) => Response | Promise<Response>;
  close?: () => Promise<void>;
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
    log.info('listening', { port: info.port }),
  );

  const shutdown = (signal: string) => {
    log.info('draining', { signal });
    setTimeout(() => {
      log.warn('drain timed out; exiting with requests in flight', { afterMs: drainMs });
      process.exit(1);
    }, drainMs).unref();
    // Connections of finished requests go idle during the drain; close them as they do.
    const http = server as import('node:http').Server;
    setInterval(() => http.closeIdleConnections(), 100).unref();
    server.close(async () => {
      await running.close?.();
      log.info('stopped');
      process.exit(0);
    });
  };
  // Started by the local runtime (with an IPC channel): die with it, even when it is killed.
  if (process.channel) process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
