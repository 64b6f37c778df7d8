import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../shared/config';
import { isMediaId } from '../../shared/media/store';

/** An event the broker gave up on, kept as it arrived so that replay sends exactly it. */
export interface DeadLetter {
  id: string;
  receivedAt: string;
  /** The delivery's content type and `ce-*` headers, and its body (base64: data may be binary). */
  headers: Record<string, string>;
  body: string;
  summary: {
    eventId?: string;
    type?: string;
    source?: string;
    subject?: string;
    /** Where delivery failed and what it answered, from Knative's error extensions. */
    errorDest?: string;
    errorCode?: string;
  };
}

export interface DeadLetterStore {
  add(letter: DeadLetter): Promise<void>;
  /** Newest first. */
  list(limit: number): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | null>;
  remove(id: string): Promise<void>;
}

/** One JSON file per dead letter: there should be few, and an operator can read them with cat. */
export function fileDeadLetters(dir: string): DeadLetterStore {
  const path = (id: string) => {
    if (!isMediaId(id)) throw new Error(`not a dead-letter id: ${JSON.stringify(id)}`);
    return join(dir, `${id}.json`);
  };
  const read = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as DeadLetter;
  return {
    async add(letter) {
      await mkdir(dir, { recursive: true });
      await writeFile(path(letter.id), JSON.stringify(letter, null, 2), { flag: 'wx' });
    },
    async list(limit) {
      const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.json'));
      const letters = await Promise.all(files.map((f) => read(join(dir, f))));
      return letters.sort((a, b) => b.receivedAt.localeCompare(a.receivedAt)).slice(0, limit);
    },
    async get(id) {
      if (!isMediaId(id)) return null;
      return read(path(id)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
    },
    async remove(id) {
      await rm(path(id), { force: true });
    },
  };
}

/** A `deadletters` collection, newest first by `receivedAt`. */
export function mongoDeadLetters(url: string): DeadLetterStore {
  const collection = async () => (await (await import('../../shared/mongo')).mongoDb(url)).db.collection<DeadLetter & { _id: string }>('deadletters');
  return {
    async add(letter) {
      await (await collection()).insertOne({ _id: letter.id, ...letter });
    },
    async list(limit) {
      const docs = await (await collection()).find().sort({ receivedAt: -1 }).limit(limit).toArray();
      return docs.map(({ _id, ...letter }) => letter);
    },
    async get(id) {
      const doc = await (await collection()).findOne({ _id: id });
      if (!doc) return null;
      const { _id, ...letter } = doc;
      return letter;
    },
    async remove(id) {
      await (await collection()).deleteOne({ _id: id });
    },
  };
}

/** Dead letters live beside media and jobs, chosen by the same `MEDIA_URL`. */
export function openDeadLetters(url: URL): DeadLetterStore {
  if (url.protocol === 'file:') return fileDeadLetters(join(fileURLToPath(url), 'deadletters'));
  if (url.protocol === 'mongodb:' || url.protocol === 'mongodb+srv:') return mongoDeadLetters(url.href);
  throw new ConfigError('MEDIA_URL', `has an unsupported scheme "${url.protocol}" (use file:///path or mongodb://host/database)`);
}
