/**
 * Once per test run: builds the function bundles (suites start processes from dist/), and
 * gives the run one temp root, removed at the end, under which every suite's temp dirs go.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundles } from '../tools/build';

export default async function setup(): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), 'earshot-tests-'));
  process.env.EARSHOT_TEST_TMP = root;
  await buildBundles('dist');
  return () => rm(root, { recursive: true, force: true });
}
