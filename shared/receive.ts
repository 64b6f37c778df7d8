import type { Context } from 'hono';
import type { FunctionEnv } from './app';
import { fromHttp, InvalidEvent, type AnyEarshotEvent, type EventType } from './events';
import { badRequest } from './problem';

/**
 * Reads the CloudEvent a broker delivered. A malformed or unexpected event can never succeed,
 * so it is answered 400, which the broker drops instead of retrying; the log keeps it.
 */
export async function receiveEvent<T extends EventType>(
  c: Context<FunctionEnv>,
  types: readonly T[],
): Promise<Extract<AnyEarshotEvent, { type: T }>> {
  const headers = Object.fromEntries(c.req.raw.headers);
  let event: AnyEarshotEvent;
  try {
    event = fromHttp(headers, await c.req.text());
  } catch (err) {
    if (err instanceof InvalidEvent) throw badRequest(err.message);
    throw err;
  }
  c.set('eventId', event.id);
  if (!types.includes(event.type as T)) throw badRequest(`This function does not handle ${event.type} events.`);
  return event as Extract<AnyEarshotEvent, { type: T }>;
}

