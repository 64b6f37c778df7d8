/** Builds the function bundles once, before any suite starts processes from dist/. */
import { buildBundles } from '../tools/build';

export default async function setup(): Promise<void> {
  await buildBundles('dist');
}
