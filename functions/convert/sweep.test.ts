import { mkdir, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support';
import { sweepTempFolders, tempPrefix } from './sweep';

describe('sweepTempFolders', () => {
  const idleMs = 20 * 60_000;
  const now = Date.now();
  const ago = (ms: number) => new Date(now - ms);
  let dir: string;

  /** A folder as convert leaves it: the spooled video and the MP3, last written `writtenAgo` ms ago. */
  const folder = async (name: string, writtenAgo: number, { outputAgo = writtenAgo } = {}) => {
    const path = join(dir, name);
    await mkdir(path);
    await writeFile(join(path, 'input'), 'video');
    await writeFile(join(path, 'output.mp3'), 'mp3');
    await utimes(join(path, 'input'), ago(writtenAgo), ago(writtenAgo));
    await utimes(join(path, 'output.mp3'), ago(outputAgo), ago(outputAgo));
    await utimes(path, ago(writtenAgo), ago(writtenAgo));
    return path;
  };

  beforeAll(async () => {
    dir = await tempDir();
    await folder(`${tempPrefix}killed`, 2 * idleMs);
    await folder(`${tempPrefix}spooling`, 1000);
    // Started long ago, but ffmpeg wrote its MP3 a minute ago: a live conversion.
    await folder(`${tempPrefix}encoding`, 2 * idleMs, { outputAgo: 60_000 });
    await folder('earshot-tests-old', 2 * idleMs); // not convert's
    const outside = await folder('elsewhere', 2 * idleMs);
    await symlink(outside, join(dir, `${tempPrefix}link`));
  });

  it('removes only convert folders untouched for longer than the idle time, and never follows a link', async () => {
    expect(await sweepTempFolders(dir, idleMs, now)).toEqual([join(dir, `${tempPrefix}killed`)]);
    expect((await readdir(dir)).sort()).toEqual([`${tempPrefix}encoding`, `${tempPrefix}link`, `${tempPrefix}spooling`, 'earshot-tests-old', 'elsewhere']);
    expect(await readdir(join(dir, 'elsewhere'))).toHaveLength(2);
  });

  it('finds nothing to do in a missing temp dir', async () => {
    expect(await sweepTempFolders(join(dir, 'missing'), idleMs, now)).toEqual([]);
  });
});
