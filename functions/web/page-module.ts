/**
 * The page's files. Run from source (tsx) they are built here, with esbuild; in dist/web.js
 * tools/build.ts puts the files it built in place of this module.
 */
import { buildPage } from './assets';

export default await buildPage();
