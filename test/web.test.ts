/**
 * The web page in a real browser: Debian's chromium driven by playwright-core, against `make
 * dev`'s runtime over real HTTP (the page on its own port, so every call is cross-origin, as on
 * Knative). At desktop width and at 390 px: sign in, a non-video refused with its reason, a video
 * uploaded with the upload bar reaching 100 %, the conversion followed live to "Ready", the MP3
 * played (its duration as the audio element reports it) and downloaded, and a corrupt video's
 * reason shown. The conversion options: a trimmed mono upload whose card shows its length and its
 * options, a bad option refused with upload's reason, and a job deleted from its card. An expired
 * MP3's card. Screenshots of each step go to .test-output/web/. And CORS the other way: a page of
 * an origin not on the list cannot call the functions.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { bundles, startRuntime, stopRuntimes, until, upload, waitForJob, type Runtime } from './e2e';
import { decodedSeconds, makeTwoTracks, makeVideo, pacedFfmpeg } from './media';
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
        let deletableWhileConverting: number | undefined;
        await expect
          .poll(
            async () => {
              const state = (await item.locator('.state').textContent()) ?? '';
              const percent = /Converting: (\d+) %/.exec(state)?.[1];
              if (percent !== undefined) {
                if (Number(percent) > 0 && !seen.some((p) => p > 0)) {
                  await shoot(page, name, '4-converting');
                  deletableWhileConverting = await item.getByRole('button', { name: 'Delete' }).count();
                }
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
        // A job is deleted once settled, not while it converts.
        expect(deletableWhileConverting).toBe(0);
        expect(await item.getByRole('button', { name: 'Delete' }).isVisible()).toBe(true);
        // Nothing was asked of the conversion: no options line; how long the MP3 is kept.
        expect(await item.locator('.options-summary').count()).toBe(0);
        expect(await item.locator('.retention').textContent()).toMatch(/^Kept until \S/);
        await shoot(page, name, '5-converted');

        // The player reads the MP3 through its signed link (no token): the right duration.
        const duration = await playerDuration(item);
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
        expect(await page.locator('#jobs li', { hasText: 'broken.mp4' }).getByRole('button', { name: 'Delete' }).isVisible()).toBe(true);
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

  /** Signs in on the page with the demo user of `dir`'s runtime. */
  const signIn = async (page: Page, rt: Runtime, dir: string) => {
    const [email, password] = (await readFile(join(dir, 'data', 'demo-user.txt'), 'utf8')).trim().split('\n');
    await page.goto(rt.ready.functions.web!);
    await page.getByLabel('Email').fill(email!);
    await page.getByLabel('Password').fill(password!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Convert a video' }).isVisible()).toBe(true);
  };
  /** The API's answer about a job, as the demo user asks it. */
  const jobOf = async (rt: Runtime, id: string) => {
    const res = await fetch(`${rt.ready.functions.download}/jobs/${id}`, { headers: { authorization: `Bearer ${rt.token}` } });
    return { status: res.status, job: (await res.json()) as Record<string, unknown> };
  };
  const jobCount = async (rt: Runtime) => {
    const res = await fetch(`${rt.ready.functions.download}/jobs?limit=100`, { headers: { authorization: `Bearer ${rt.token}` } });
    return ((await res.json()) as { jobs: unknown[] }).jobs.length;
  };

  it.each(Object.keys(viewports) as (keyof typeof viewports)[])(
    'at %s width: conversion options sent as set (a trimmed mono CBR MP3 of the second audio track, its card saying so), a bad option refused with its field named, a job deleted from its card',
    async (name) => {
      const dir = await tempDir();
      const rt = await startRuntime(bundles, join(dir, 'data'));
      const context = await browser.newContext({ viewport: viewports[name] });
      const page = await context.newPage();
      try {
        await signIn(page, rt, dir);
        // Closed by default: none of its controls shows until it is opened.
        const options = page.locator('#options');
        expect(await options.evaluate((d: HTMLDetailsElement) => d.open)).toBe(false);
        expect(await page.getByLabel('Channels').isVisible()).toBe(false);
        await page.getByText('Options', { exact: true }).click();
        expect(await page.getByLabel('Channels').isVisible()).toBe(true);
        // Every option has a labelled control.
        for (const label of ['Quality', 'Channels', 'Start', 'End', 'Audio track', 'Normalise loudness', 'Target (LUFS)', 'Cover art from a frame of the video']) {
          expect(await page.getByLabel(label, { exact: true }).count(), label).toBe(1);
        }
        expect(await page.getByLabel('Start', { exact: true }).getAttribute('inputmode')).toBe('decimal');
        expect(await page.getByLabel('Cover art from a frame of the video').isChecked()).toBe(true);
        // The loudness target is only asked for when normalisation is.
        const target = page.getByLabel('Target (LUFS)');
        expect(await target.isDisabled()).toBe(true);
        await page.getByLabel('Normalise loudness').check();
        expect(await target.inputValue()).toBe('-16');
        expect(await target.isEnabled()).toBe(true);
        await page.getByLabel('Normalise loudness').uncheck();
        expect(await target.isDisabled()).toBe(true);

        await page.getByLabel('Quality', { exact: true }).selectOption({ label: 'CBR 128 kbit/s' });
        await page.getByLabel('Channels').selectOption({ label: 'Mono' });
        await page.getByLabel('Start', { exact: true }).fill('0.5');
        await page.getByLabel('End', { exact: true }).fill('0:01.5'); // minutes and seconds: sent as 1.5
        await page.getByLabel('Audio track').fill('2');
        expect(await page.locator('#options summary').textContent()).toBe('Options (5 set)');
        await shoot(page, name, '8-options');

        // Sent as set: what upload stored is what was asked, and the MP3 is the 1 s of track 2 asked for.
        const video = await makeTwoTracks(join(dir, 'Clip.mkv'), { seconds: 3 });
        await page.getByLabel('Video file').setInputFiles(video);
        await page.getByRole('button', { name: 'Upload and convert' }).click();
        const item = page.locator('#jobs li', { hasText: 'Clip.mkv' });
        await expect.poll(() => item.locator('.state').textContent(), { timeout: 120_000 }).toMatch(/^Ready/);
        expect(await item.locator('.state').textContent()).toBe('Ready · 0:01');
        expect(await item.locator('.options-summary').textContent()).toBe('Trimmed 0:00.5–0:01.5 · CBR 128 kbit/s · Mono · Track 2');
        const id = (await item.getAttribute('id'))!.replace(/^job-/, '');
        const { job } = await jobOf(rt, id);
        expect(job.options).toEqual({ bitrate: 128, channels: 'mono', start: 0.5, end: 1.5, track: 2 });
        const mp3 = job.mp3 as { durationSeconds: number; audioTrack: number };
        expect(mp3.audioTrack).toBe(2);
        expect(Math.abs(mp3.durationSeconds - 1)).toBeLessThan(0.1);
        // How long it is kept, as the job says, in the reader's words.
        expect(await item.locator('.retention').textContent()).toMatch(/^Kept until \S/);
        expect(await item.locator('.retention time').getAttribute('datetime')).toBe(job.expiresAt);
        const played = await playerDuration(item);
        expect(Math.abs(played - 1)).toBeLessThan(0.2);
        // The options stay set for the next upload; the file is cleared.
        expect(await page.getByLabel('End', { exact: true }).inputValue()).toBe('0:01.5');
        expect(await page.getByLabel('Video file').inputValue()).toBe('');
        await shoot(page, name, '9-options-card');

        // End before start: upload's 400 names the field, the panel points at it, nothing is kept.
        const before = await jobCount(rt);
        await page.getByLabel('Start', { exact: true }).fill('5');
        await page.getByLabel('End', { exact: true }).fill('2');
        await page.getByLabel('Video file').setInputFiles(video);
        await page.getByRole('button', { name: 'Upload and convert' }).click();
        await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 60_000 }).toMatch(/^"end": .*after start/);
        const end = page.getByLabel('End', { exact: true });
        expect(await end.getAttribute('aria-invalid')).toBe('true');
        expect(await end.evaluate((input) => input === document.activeElement)).toBe(true);
        expect(await page.locator('#jobs li').count()).toBe(1);
        expect(await jobCount(rt)).toBe(before);
        await shoot(page, name, '10-bad-option');
        // Reset options: every control back at its default, nothing marked.
        await page.getByRole('button', { name: 'Reset options' }).click();
        expect(await end.inputValue()).toBe('');
        expect(await end.getAttribute('aria-invalid')).toBeNull();
        expect(await page.getByLabel('Quality', { exact: true }).inputValue()).toBe('');
        expect((await page.locator('#options summary').textContent())?.trim()).toBe('Options');

        // Delete asks first: dismissed, nothing happens; accepted, the job and its card are gone.
        const questions: string[] = [];
        page.once('dialog', (dialog) => {
          questions.push(dialog.message());
          void dialog.dismiss();
        });
        await item.getByRole('button', { name: 'Delete' }).click();
        await expect.poll(() => questions.length).toBe(1);
        expect(questions[0]).toMatch(/^Delete Clip\.mkv\?/);
        expect(await item.count()).toBe(1);
        expect((await jobOf(rt, id)).status).toBe(200);
        page.once('dialog', (dialog) => void dialog.accept());
        await item.getByRole('button', { name: 'Delete' }).click();
        await expect.poll(() => item.count()).toBe(0);
        expect(await page.getByRole('status').textContent()).toBe('Clip.mkv was deleted.');
        expect(await page.getByText('Nothing yet').isVisible()).toBe(true);
        expect((await jobOf(rt, id)).status).toBe(404);
        expect(await jobCount(rt)).toBe(before - 1);
      } finally {
        await context.close();
      }
    },
    300_000,
  );

  it('an expired MP3: its card says when it was deleted, offers no player or link, and can be deleted', async () => {
    const dir = await tempDir();
    // MP3s kept for 2 s, and the sweeper pinged every second.
    const rt = await startRuntime(bundles, join(dir, 'data'), { MP3_RETENTION_DAYS: String(2 / 86400), EARSHOT_PING_EVERY_SECONDS: '1' });
    const id = await upload(rt, await makeVideo(join(dir, 'Old.mp4'), { seconds: 1 }), 'Old.mp4');
    await waitForJob(rt, id, 'converted');
    await until(() => rt.lines.some((l) => l.fn === 'sweeper' && l.msg === 'mp3 expired' && l.videoId === id), 120_000);
    const { job } = await jobOf(rt, id);
    expect(job).toMatchObject({ expired: true, expiresAt: expect.any(String) });
    const context = await browser.newContext({ viewport: viewports.desktop });
    const page = await context.newPage();
    try {
      await signIn(page, rt, dir);
      const item = page.locator('#jobs li', { hasText: 'Old.mp4' });
      await expect.poll(() => item.locator('.state').textContent(), { timeout: 30_000 }).toBe('Expired');
      expect(await item.locator('.retention').textContent()).toMatch(/^Expired: the MP3 was deleted on \S.*\. Upload the video again for a new one\.$/);
      expect(await item.locator('.retention time').getAttribute('datetime')).toBe(job.expiresAt);
      expect(await item.locator('audio').count()).toBe(0);
      expect(await item.getByRole('link').count()).toBe(0);
      expect(await item.getByRole('button', { name: 'Delete' }).isVisible()).toBe(true);
      await shoot(page, 'desktop', '11-expired');
      await page.setViewportSize(viewports.phone);
      await shoot(page, 'phone', '11-expired');
      // What is left of it (the job) goes too.
      page.once('dialog', (dialog) => void dialog.accept());
      await item.getByRole('button', { name: 'Delete' }).click();
      await expect.poll(() => item.count()).toBe(0);
      expect(await page.getByRole('status').textContent()).toBe('Old.mp4 was deleted.');
      expect((await jobOf(rt, id)).status).toBe(404);
    } finally {
      await context.close();
    }
  });

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

/** The duration the card's audio player reports once it has read the MP3's header. */
function playerDuration(item: Locator): Promise<number> {
  return item.locator('audio').evaluate(
    (audio: HTMLAudioElement) =>
      new Promise<number>((resolve, reject) => {
        if (audio.readyState >= 1) return resolve(audio.duration);
        audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
        audio.addEventListener('error', () => reject(new Error(`audio error ${audio.error?.code}`)));
        audio.load();
      }),
  );
}
