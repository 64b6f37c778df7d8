import { CloudEvent, HTTP, type CloudEventV1 } from 'cloudevents';
import * as z from 'zod/mini';

/** Every event earshot emits; the Trigger filters in `eventing/` name exactly these. */
export const EventTypes = {
  videoUploaded: 'dev.earshot.video.uploaded',
  audioConverted: 'dev.earshot.audio.converted',
  conversionFailed: 'dev.earshot.conversion.failed',
} as const;
export type EventType = (typeof EventTypes)[keyof typeof EventTypes];

/**
 * Anything in the cluster can post to the broker, so an event is a claim: handlers take its ids
 * and read owner, address, filename, reason and state from the stores. The other fields are
 * kept for people reading events (and for consumers of earlier versions), never trusted.
 * `email` is absent for a job recorded before owner emails were kept.
 */
const owner = z.object({ id: z.string().check(z.minLength(1)), email: z.optional(z.string().check(z.minLength(3))) });
const id = z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/));
const count = z.int().check(z.gte(0));

export const eventSchemas = {
  [EventTypes.videoUploaded]: z.object({
    videoId: id,
    owner,
    filename: z.string(),
    contentType: z.string(),
    sizeBytes: count,
  }),
  [EventTypes.audioConverted]: z.object({
    videoId: id,
    mp3Id: id,
    owner,
    filename: z.string(),
    durationSeconds: z.number().check(z.gte(0)),
    sizeBytes: count,
  }),
  [EventTypes.conversionFailed]: z.object({
    videoId: id,
    owner,
    filename: z.string(),
    reason: z.string(),
  }),
} satisfies Record<EventType, z.ZodMiniType>;

export type EventData<T extends EventType> = z.infer<(typeof eventSchemas)[T]>;

export interface EarshotEvent<T extends EventType = EventType> {
  id: string;
  type: T;
  source: string;
  subject: string;
  data: EventData<T>;
}

export type AnyEarshotEvent = { [T in EventType]: EarshotEvent<T> }[EventType];

/** Ids are derived from what the event is about, so a repeated reply is recognisably the same event. */
export function makeEvent<T extends EventType>(type: T, source: string, subject: string, data: EventData<T>): EarshotEvent<T> {
  return { id: `${subject}.${type.slice('dev.earshot.'.length)}`, type, source, subject, data };
}

/** Binary content mode: attributes as `ce-*` headers, data as the JSON body. */
export function toHttp(event: EarshotEvent): { headers: Record<string, string>; body: string } {
  const message = HTTP.binary(
    new CloudEvent({ ...event, datacontenttype: 'application/json', data: event.data }),
  );
  return { headers: message.headers as Record<string, string>, body: String(message.body) };
}

export class InvalidEvent extends Error {
  override name = 'InvalidEvent';
}

/** Parses a CloudEvent in binary or structured mode and checks its data against its type's schema. */
export function fromHttp(headers: Record<string, string>, body: string): AnyEarshotEvent {
  let event: CloudEventV1<unknown>;
  try {
    const parsed = HTTP.toEvent({ headers, body });
    if (Array.isArray(parsed)) throw new InvalidEvent('batched events are not accepted');
    event = parsed;
  } catch (err) {
    throw err instanceof InvalidEvent ? err : new InvalidEvent(`not a CloudEvent: ${(err as Error).message}`);
  }
  const schema = eventSchemas[event.type as EventType];
  if (!schema) throw new InvalidEvent(`unknown event type "${event.type}"`);
  const data = typeof event.data === 'string' ? safeJson(event.data) : event.data;
  const result = schema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'data'} (${issue.code})`);
    throw new InvalidEvent(`${event.type} data is invalid: ${problems.join(', ')}`);
  }
  return {
    id: event.id,
    type: event.type,
    source: event.source,
    subject: event.subject ?? '',
    data: result.data,
  } as AnyEarshotEvent;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
