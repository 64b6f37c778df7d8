/**
 * The web page in a real browser: Debian's chromium driven by playwright-core, against `make
 * dev`'s runtime over real HTTP (the page on its own port, so every call is cross-origin, as on
 * Knative). At desktop width and at 390 px: sign in, a non-video refused with its reason, a video
 * uploaded with the upload bar reaching 100 %, the conversion followed live to "Ready", the MP3
 * played (its duration as the audio element reports it) and downloaded, and a corrupt video's
 * reason shown. Screenshots of each step go to .test-output/web/. And CORS the other way: a page
 * of an origin not on the list cannot call the functions.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { bundles, startRuntime, stopRuntimes, type Runtime } from './e2e';
import { decodedSeconds, makeVideo, pacedFfmpeg } from './media';
import { describeWithService } from './services';
import { tempDir } from './support';

const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const screenshots = join(process.cwd(), '.test-output', 'web');
const viewports = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };

afterEach(stopRuntimes);

describeWithService("Debian's chromium", Boolean(executablePath), 'the web page in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    await mkdir(screenshots, { recursive: true });
    // Playwright starts chromium on a fresh profile directory of its own (--user-data-dir) each launch.
    browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });
  afterAll(() => browser?.close());

  const shoot = (page: Page, viewport: string, step: string) => page.screenshot({ path: join(screenshots, `${viewport}-${step}.png`), fullPage: true });

  it.each(Object.keys(viewports) as (keyof typeof viewports)[])(
    'at %s width: sign in, a non-video and a too-large file refused, upload with progress, converted live, played, downloaded; a corrupt video\'s reason shown',
    async (name) => {
      const dir = await tempDir();
      // convert's ffmpeg at the clip's pace, so that the conversion can be watched.
      const rt = await startRuntime(bundles, join(dir, 'data'), { FFMPEG_PATH: await pacedFfmpeg(dir), MAX_UPLOAD_BYTES: String(2_000_000) });
      const [email, password] = (await readFile(join(dir, 'data', 'demo-user.txt'), 'utf8')).trim().split('\n');
      const context = await browser.newContext({ viewport: viewports[name], acceptDownloads: true });
      const page = await context.newPage();
      try {
        await page.goto(rt.ready.functions.web!);
        await expect.poll(() => page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
        await shoot(page, name, '1-sign-in');

        // A wrong password first: the page says what login answered.
        await page.getByLabel('Email').fill(email!);
        await page.getByLabel('Password').fill('not-the-password');
        await page.getByRole('button', { name: 'Sign in' }).click();
        await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/password|credentials|email/i);
        await page.getByLabel('Password').fill(password!);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await expect.poll(() => page.getByRole('heading', { name: 'Convert a video' }).isVisible()).toBe(true);
        expect(await page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(false);
        expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true);
        await shoot(page, name, '2-signed-in');

        // Not a video: 415 from upload, its detail shown.
        const text = join(dir, 'notes.mp4');
        await writeFile(text, 'these are my notes, not a video\n'.repeat(200));
        await page.getByLabel('Video file').setInputFiles(text);
        await page.getByRole('button', { name: 'Upload and convert' }).click();
        await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 60_000 }).toMatch(/video|audio|media/i);
        await shoot(page, name, '3-not-a-video');

        // Over MAX_UPLOAD_BYTES (2 MB here): 413, said in words.
        const big = join(dir, 'huge.mp4');
        await writeFile(big, Buffer.alloc(3_000_000, 1));
        await page.getByLabel('Video file').setInputFiles(big);
        await page.getByRole('button', { name: 'Upload and convert' }).click();
        await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 60_000 }).toMatch(/larger than|too large|limit/i);

        // A 20-second video: the upload bar reaches 100 %, then the conversion is followed to the end.
        const video = await makeVideo(join(dir, 'Talk.mp4'), { seconds: 20 });
        await page.getByLabel('Video file').setInputFiles(video);
        await page.getByRole('button', { name: 'Upload and convert' }).click();
        await expect.poll(() => page.locator('#upload-progress').evaluate((bar: HTMLProgressElement) => bar.value), { timeout: 60_000 }).toBe(100);
        const item = page.locator('#jobs li', { hasText: 'Talk.mp4' });
        const seen: number[] = [];
        await expect
          .poll(
            async () => {
              const state = (await item.locator('.state').textContent()) ?? '';
              const percent = /Converting: (\d+) %/.exec(state)?.[1];
              if (percent !== undefined) {
                if (Number(percent) > 0 && !seen.some((p) => p > 0)) await shoot(page, name, '4-converting');
                seen.push(Number(percent));
              }
              return state;
            },
            { timeout: 180_000, interval: 100 },
          )
          .toMatch(/^Ready/);
        expect(Math.max(...seen)).toBeGreaterThan(0);
        expect(seen).toEqual([...seen].sort((a, b) => a - b)); // rising, never back
        expect(await page.getByRole('status').textContent()).toContain('Talk.mp4 is ready.');
        await shoot(page, name, '5-converted');

        // The player reads the MP3 through its signed link (no token): the right duration.
        const duration = await item.locator('audio').evaluate(
          (audio: HTMLAudioElement) =>
            new Promise<number>((resolve, reject) => {
              if (audio.readyState >= 1) return resolve(audio.duration);
              audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
              audio.addEventListener('error', () => reject(new Error(`audio error ${audio.error?.code}`)));
              audio.load();
            }),
        );
        expect(Math.abs(duration - 20)).toBeLessThan(0.5);

        const [download] = await Promise.all([page.waitForEvent('download'), item.getByRole('link', { name: 'Download the MP3' }).click()]);
        expect(download.suggestedFilename()).toBe('Talk.mp3');
        const saved = join(dir, 'saved.mp3');
        await download.saveAs(saved);
        expect(Math.abs((await decodedSeconds(saved)) - 20)).toBeLessThan(0.5);

        // A corrupt video: the card says why it failed.
        const corrupt = join(dir, 'broken.mp4');
        const whole = await readFile(video);
        await writeFile(corrupt, whole.subarray(0, Math.floor(whole.length / 2)));
        await page.getByLabel('Video file').setInputFiles(corrupt);
        await page.getByRole('button', { name: 'Upload and convert' }).click();
        const failed = page.locator('#jobs li', { hasText: 'broken.mp4' }).locator('.state');
        await expect.poll(() => failed.textContent(), { timeout: 180_000 }).toMatch(/^Could not convert: .*could not be read/);
        await shoot(page, name, '6-failed');

        // After a reload the list comes from GET /jobs, newest first.
        await page.reload();
        await expect.poll(() => page.locator('#jobs li .name').allTextContents(), { timeout: 30_000 }).toEqual(['broken.mp4', 'Talk.mp4']);
        await shoot(page, name, '7-list');

        // Signing out forgets the token: the sign-in form again, no jobs.
        await page.getByRole('button', { name: 'Sign out' }).click();
        expect(await page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
        expect(await page.locator('#jobs li').count()).toBe(0);
      } finally {
        await context.close();
      }
    },
    600_000,
  );

  it('CORS the other way: a page from an origin not on the list cannot call login, upload or download', async () => {
    const dir = await tempDir();
    const rt: Runtime = await startRuntime(bundles, join(dir, 'data'));
    const elsewhere = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>'));
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/`);
      const outcome = (url: string, init: RequestInit) =>
        page.evaluate(([u, i]) => fetch(u, i).then((r) => `answered ${r.status}`, (e: Error) => `refused: ${e.name}`), [url, init] as const);
      const token = `Bearer ${rt.token}`;
      expect(await outcome(`${rt.ready.functions.login}/login`, { method: 'POST', headers: { authorization: 'Basic ZGVtb0BlYXJzaG90LmxvY2FsaG9zdDp4' } })).toBe('refused: TypeError');
      expect(await outcome(`${rt.ready.functions.download}/jobs`, { headers: { authorization: token } })).toBe('refused: TypeError');
      expect(await outcome(`${rt.ready.functions.upload}/upload`, { method: 'POST', headers: { authorization: token }, body: 'x' })).toBe('refused: TypeError');
      // The same call from the page's own origin is answered.
      await page.goto(rt.ready.functions.web!);
      expect(await outcome(`${rt.ready.functions.download}/jobs`, { headers: { authorization: token } })).toBe('answered 200');
    } finally {
      await context.close();
      elsewhere.close();
    }
  });
}, 'apt-get install chromium');
