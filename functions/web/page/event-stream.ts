/**
 * Reads a text/event-stream body to its end: `onEvent` gets each event's name and data, `onId`
 * each id as it comes (so that a dropped stream can resume from it).
 */
export async function readEvents(body: ReadableStream<Uint8Array<ArrayBuffer>>, onEvent: (event: string, data: string) => void, onId: (id: string) => void): Promise<void> {
  let buffer = '';
  let event = 'message';
  let data: string[] = [];
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (data.length > 0) onEvent(event, data.join('\n'));
        [event, data] = ['message', []];
      } else if (line.startsWith('id:')) onId(line.slice(3).trim());
      else if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
  }
}
