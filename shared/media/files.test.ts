import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
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

  it('removes the temp files a killed process left, when it opens, and keeps the fresh ones', async () => {
    const root = join(await tempDir(), 'media');
    await mkdir(join(root, '.tmp'), { recursive: true });
    const left = join(root, '.tmp', 'left-by-sigkill.1234');
    const writing = join(root, '.tmp', 'being-written.5678');
    await writeFile(left, 'partial');
    await writeFile(writing, 'partial');
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(left, twoHoursAgo, twoHoursAgo);

    const media = new FileMediaStore(root);
    expect(await media.swept).toEqual(['left-by-sigkill.1234']);
    expect(await readdir(join(root, '.tmp'))).toEqual(['being-written.5678']);
  });

  it('opens on a folder that does not exist yet', async () => {
    const media = new FileMediaStore(join(await tempDir(), 'media'));
    expect(await media.swept).toEqual([]);
  });
});
