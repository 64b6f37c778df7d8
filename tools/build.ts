/**
 * One esbuild bundle per function, `dist/<name>.js`, holding only what that function imports.
 * Left outside the bundles: the native SQLite driver (local development only) and the npm
 * ffmpeg, which finds its binary beside its own package.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build, type Metafile, type Plugin } from 'esbuild';
import { buildPage } from '../functions/web/assets';

export const external = ['better-sqlite3', '@ffmpeg-installer/ffmpeg'];

export async function functionNames(root = 'functions'): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true });
  const names = [];
  for (const entry of entries) {
    if (entry.isDirectory() && (await readdir(join(root, entry.name))).includes('main.ts')) names.push(entry.name);
  }
  return names.sort();
}

/** Services that are not earshot functions but ship the same way. */
export const extraEntries = { 'mysql-proxy': 'mysql-proxy/main.ts' };

/** functions/web/page-module.ts, in the bundle: the page's files as built now (esbuild stays out of dist/web.js). */
const pageModule: Plugin = {
  name: 'earshot-page',
  setup(b) {
    b.onLoad({ filter: /[\\/]functions[\\/]web[\\/]page-module\.ts$/ }, async () => ({ contents: `export default ${JSON.stringify(await buildPage())};`, loader: 'js' }));
  },
};

export async function buildBundles(outdir = 'dist'): Promise<Metafile> {
  const names = await functionNames();
  const result = await build({
    plugins: [pageModule],
    entryPoints: { ...Object.fromEntries(names.map((name) => [name, join('functions', name, 'main.ts')])), ...extraEntries },
    outdir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    conditions: ['node'],
    external,
    // CommonJS dependencies call require() and read __dirname; give the ESM bundles both.
    banner: {
      js: [
        "import { createRequire as __earshotRequire } from 'node:module';",
        "import { fileURLToPath as __earshotPath } from 'node:url';",
        'const require = __earshotRequire(import.meta.url);',
        'const __filename = __earshotPath(import.meta.url);',
        "const __dirname = __earshotPath(new URL('.', import.meta.url));",
      ].join(' '),
    },
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  await writeFile(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
  return result.metafile;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const meta = await buildBundles(process.argv[2]);
  for (const [file, output] of Object.entries(meta.outputs)) {
    if (file.endsWith('.js')) console.log(`${file}  ${(output.bytes / 1024).toFixed(0)} KiB`);
  }
}
