import { HTTP } from 'cloudevents';
import { bodyLimit } from 'hono/body-limit';
import { functionApp } from '../../shared/app';
import { badRequest } from '../../shared/problem';
import { sweep, type SweepDeps, type SweepReport } from './sweep';

/** The type of the event a Knative PingSource sends on its schedule. */
export const pingEventType = 'dev.knative.sources.ping';

export function createApp(deps: SweepDeps) {
  const app = functionApp(deps.log);
  // Pings that arrive while a sweep runs join it: one pass at a time per process is enough.
  let running: Promise<SweepReport> | undefined;

  /** The PingSource delivers its ping here; the answer says what the sweep removed. */
  app.post('/', bodyLimit({ maxSize: 64 * 1024 }), async (c) => {
    const headers = Object.fromEntries(c.req.raw.headers);
    let type: string;
    try {
      const event = HTTP.toEvent({ headers, body: await c.req.text() });
      if (Array.isArray(event)) throw new Error('batched events are not accepted');
      c.set('eventId', event.id);
      type = event.type;
    } catch (err) {
      throw badRequest(`not a CloudEvent: ${(err as Error).message}`);
    }
    if (type !== pingEventType) throw badRequest(`This function handles only ${pingEventType} events, not ${type}.`);

    running ??= sweep(deps).finally(() => (running = undefined));
    const report = await running;
    deps.log.info('swept', { ...report });
    return c.json(report);
  });

  return app;
}
