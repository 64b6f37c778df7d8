/**
 * Once per test run: builds the function bundles (suites start processes from dist/), fetches
 * the images' Node when this machine runs another major (test/image-node.ts), and
 * gives the run one temp root, removed at the end, under which every suite's temp dirs go.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundles } from '../tools/build';
import { fetchImageNode } from './image-node';

export default async function setup(): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), 'earshot-tests-'));
  process.env.EARSHOT_TEST_TMP = root;
  await buildBundles('dist');
  const why = fetchImageNode();
  if (why) console.warn(why);
  return () => rm(root, { recursive: true, force: true });
}
