/**
 * schemathesis, a property-based API fuzzer, against functions/openapi.yaml: login, upload and
 * download as real processes, with valid credentials, all checks on, a bounded number of
 * examples. Each function gets the operations its paths name (`x-earshot-function`).
 * `make services` installs schemathesis into .services/schemathesis.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { hashPassword } from '../functions/login/password';
import { tokenIssuer } from '../functions/login/tokens';
import { SqliteUserStore } from '../functions/login/users/sqlite';
import { loadSigningKey } from '../shared/keys';
import { openSqlite } from '../shared/sqlite';
import { openStores } from '../shared/stores';
import { startBundle, type StartedFunction } from './processes';
import { describeWithService } from './services';
import { audience, tempDir } from './support';

/** The paths a function serves, as the document names them (`x-earshot-function`), as one regex. */
function pathsOf(name: string): string {
  const { paths } = parse(readFileSync('functions/openapi.yaml', 'utf8')) as { paths: Record<string, { 'x-earshot-function'?: string }> };
  const mine = Object.entries(paths).filter(([, item]) => [name, 'all'].includes(item['x-earshot-function'] ?? ''));
  return `^(${mine.map(([path]) => path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`;
}

const schemathesis = join(process.cwd(), '.services', 'schemathesis', 'bin', 'schemathesis');
const email = 'fuzz@example.com';
const password = 'fuzz password, local tests only';

function run(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(schemathesis, args, { maxBuffer: 64 << 20, timeout: 20 * 60_000, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, output: stdout + stderr });
    });
  });
}

describeWithService(
  'schemathesis',
  existsSync(schemathesis),
  'schemathesis against the OpenAPI document',
  () => {
    const running: StartedFunction[] = [];
    const sink = createServer((req, res) => req.resume().on('end', () => res.writeHead(202).end()));
    let urls: Record<string, string>;
    let token: string;
    /** Real data for the download paths: a converted job and its MP3, so the fuzzer gets past 404. */
    let config: string;

    beforeAll(async () => {
      const dir = await tempDir();
      const users = new SqliteUserStore(await openSqlite(join(dir, 'users.db')));
      const user = await users.create({ email, passwordHash: await hashPassword(password), role: 'user' });
      await users.close();
      const key = await loadSigningKey(undefined, dir);
      token = (await tokenIssuer(key, audience, 3600)({ id: user.id, email, role: 'user' })).token;
      const stores = await openStores(pathToFileURL(join(dir, 'store')));
      const id = randomUUID();
      await stores.jobs.create({ id, owner: user.id, filename: 'fuzz.mp4' });
      await stores.media.put('mp3s', id, { owner: user.id, filename: 'fuzz.mp3', contentType: 'audio/mpeg', sourceVideoId: id }, Readable.from([Buffer.alloc(4096, 0xff)]));
      await stores.jobs.startConversion(id, 60_000);
      await stores.jobs.finishConversion(id, { id, durationSeconds: 1, sizeBytes: 4096 });
      await stores.close();
      config = join(dir, 'schemathesis.toml');
      await writeFile(config, [
        '[parameters]',
        `"path.id" = "${id}"`,
        // What a schema cannot say, and the right answer to data that only looks valid: bytes that
        // are not a video (415), a well-formed Range past the end of the MP3 (416).
        '[checks.positive_data_acceptance]',
        'expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "415", "416", "429", "503"]',
        // Upload's options have a rule across fields ("end after start") JSON Schema cannot state:
        // there alone, a schema-valid body may get 400.
        '[[operations]]',
        'include-path = "/upload"',
        'include-method = "POST"',
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "415", "416", "429", "503"]',
      ].join('\n'));
      await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
      const env = { DATA_DIR: dir, K_SINK: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/` };
      urls = {};
      for (const name of ['login', 'upload', 'download']) {
        const fn = await startBundle(name, env);
        running.push(fn);
        urls[name] = fn.url;
      }
    });
    afterAll(async () => {
      await Promise.all(running.map((fn) => fn.stop()));
      sink.close();
    });

    it.each(['login', 'upload', 'download'])('finds nothing wrong in %s', { timeout: 20 * 60_000 }, async (name) => {
      const auth = name === 'login' ? ['--auth', `${email}:${password}`] : ['--header', `Authorization: Bearer ${token}`];
      const { code, output } = await run([
        '--config-file', config,
        'run', 'functions/openapi.yaml',
        '--url', urls[name]!,
        '--include-path-regex', pathsOf(name),
        ...auth,
        '--checks', 'all',
        '--max-examples', '30',
        '--workers', '1',
        '--request-timeout', '60',
        '--suppress-health-check', 'too_slow',
        '--seed', '20261128',
      ]);
      expect(output, output).toMatch(/passed|No issues found/i);
      expect(code, output).toBe(0);
    });
  },
  'make services (installs schemathesis into .services/)',
);
