import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support';
import { mediaStoreContract } from './contract';
import { FileMediaStore } from './files';

mediaStoreContract('files', async () => new FileMediaStore(join(await tempDir(), 'media')));

describe('file media store', () => {
  it('leaves no temp file when a body fails', async () => {
    const root = join(await tempDir(), 'media');
    const media = new FileMediaStore(root);
    const failing = Readable.from((async function* () { yield Buffer.alloc(10); throw new Error('gone'); })());
    await expect(media.put('videos', 'abc', { owner: 'o', filename: 'f', contentType: 'video/mp4' }, failing)).rejects.toThrow('gone');
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });
});
