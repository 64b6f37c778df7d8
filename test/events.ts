import { EventTypes, makeEvent, toHttp, type EarshotEvent, type EventData } from '../shared/events';

/** A `video.uploaded` event as upload would send it. */
export const uploadedEvent = (data: EventData<typeof EventTypes.videoUploaded>) =>
  makeEvent(EventTypes.videoUploaded, '/earshot/upload', data.videoId, data);

/** A delivery in binary content mode, as the broker makes it. */
export const delivery = (event: EarshotEvent): RequestInit => {
  const { headers, body } = toHttp(event);
  return { method: 'POST', headers, body };
};
