import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** The prefix convert.ts gives its temp folders (mkdtemp). */
export const tempPrefix = 'earshot-convert-';

/**
 * Removes the temp folders a killed convert left in `dir`: those whose folder and entries have
 * all been untouched for `idleMs`. A conversion in progress, in this process or another, keeps
 * writing there (the spooled video, then ffmpeg's MP3), so with `idleMs` above the ffmpeg
 * timeout its folder is never taken. Returns the folders removed; any that cannot be read or
 * removed (another user's, or gone meanwhile) are left alone.
 */
export async function sweepTempFolders(dir: string, idleMs: number, now = Date.now()): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names.filter((n) => n.startsWith(tempPrefix))) {
    const folder = join(dir, name);
    try {
      const info = await lstat(folder);
      if (!info.isDirectory()) continue; // never follow a link out of the temp dir
      let latest = info.mtimeMs;
      for (const entry of await readdir(folder)) latest = Math.max(latest, (await lstat(join(folder, entry))).mtimeMs);
      if (now - latest <= idleMs) continue;
      await rm(folder, { recursive: true, force: true });
      removed.push(folder);
    } catch {
      // raced with its owner removing it, or not ours to read: not stale by our knowledge
    }
  }
  return removed;
}
