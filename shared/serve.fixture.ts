/** A function served by runFunction whose routes fail outside any handler's reach, for serve.test.ts. */
import { EventEmitter } from 'node:events';
import { functionApp } from './app';
import { runFunction } from './serve';

await runFunction('fixture', async (_env, log) => {
  const app = functionApp(log);
  const draining = new AbortController();
  // An answer that never ends by itself, as an event stream: the drain must end it.
  app.get('/until-drained', (c) =>
    c.body(
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('open\n'));
          draining.signal.addEventListener('abort', () => controller.close());
        },
      }),
    ),
  );
  // An 'error' event nobody listens to, after the answer: what a stream of one request can do.
  app.get('/stray-error', (c) => {
    setImmediate(() => new EventEmitter().emit('error', new Error('a stream nobody listened to')));
    return c.text('answered');
  });
  app.get('/stray-rejection', (c) => {
    void Promise.reject(new Error('a promise nobody awaited'));
    return c.text('answered');
  });
  return { fetch: app.fetch, drain: () => draining.abort() };
});
