/** A Server-Sent Events client for tests: reads a stream over real HTTP, message by message. */

/** One SSE message as a client parses it; `comment` for a line starting with ':'. */
export interface Message {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** An event stream read over real HTTP, message by message. */
export async function connect(url: string, token: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers }, signal: abort.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let ended = false;
  const next = async (): Promise<Message | undefined> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message: Message = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) message.comment = line.slice(1).trim();
          const [, field, value] = /^(id|event|data): ?(.*)$/.exec(line) ?? [];
          if (field) message[field as 'id' | 'event' | 'data'] = value;
        }
        return message;
      }
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        return undefined;
      }
      buffer += value;
    }
  };
  /** Messages until `stop` says so (inclusive), skipping heartbeats unless asked for. */
  const until = async (stop: (m: Message) => boolean, { comments = false } = {}) => {
    const got: Message[] = [];
    for (let m = await next(); m; m = await next()) {
      if (m.comment !== undefined && !comments) continue;
      got.push(m);
      if (stop(m)) break;
    }
    return got;
  };
  /** Every message left, until the server ends the stream. */
  const rest = async () => {
    const got: Message[] = [];
    for (let m = await next(); m; m = await next()) if (m.comment === undefined) got.push(m);
    return got;
  };
  return { res, next, until, rest, ended: () => ended, close: () => abort.abort() };
}
