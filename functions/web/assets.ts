/**
 * The page's three files as the web function serves them: the HTML, the stylesheet, and the
 * script bundled for browsers by esbuild. Run at build time (tools/build.ts embeds the result in
 * dist/web.js) and by tests.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface PageAssets {
  html: string;
  css: string;
  script: string;
}

const dir = join(import.meta.dirname, 'page');

export async function buildPage(): Promise<PageAssets> {
  const [html, css, bundled] = await Promise.all([
    readFile(join(dir, 'index.html'), 'utf8'),
    readFile(join(dir, 'style.css'), 'utf8'),
    build({ entryPoints: [join(dir, 'app.ts')], bundle: true, format: 'iife', platform: 'browser', target: 'es2022', minify: true, write: false, logLevel: 'warning' }),
  ]);
  return { html, css, script: bundled.outputFiles[0]!.text };
}
