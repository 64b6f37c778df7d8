import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlReachable, startMysqlProxy, type RunningProxy } from '../../test/mysql';
import { describeWithService } from '../../test/services';
import { tempDir } from '../../test/support';
import { verifyPassword } from './password';
import { openUsers } from './users/open';

/** Runs `make user-add`'s command the way the Makefile does, the password on stdin. */
function userAdd(args: string[], password: string, usersDbUrl: string, script = 'functions/login/user-add.ts') {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      env: { ...process.env, USERS_DB_URL: usersDbUrl },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(password);
  });
}

describe('user-add', () => {
  let url: string;
  beforeAll(async () => {
    url = pathToFileURL(join(await tempDir(), 'users.db')).href;
  });

  it('stores a scrypt hash of the password read from stdin, never the password', async () => {
    const result = await userAdd(['carol@example.com', 'admin'], 'carol’s long password\n', url);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^created admin carol@example.com \(id [\w-]+\)\n$/);
    const users = await openUsers(new URL(url));
    const carol = await users.findByEmail('carol@example.com');
    await users.close();
    expect(carol!.role).toBe('admin');
    expect(carol!.passwordHash).toMatch(/^scrypt\$/);
    expect(await verifyPassword('carol’s long password', carol!.passwordHash)).toBe(true);
  });

  it('refuses a duplicate email with a clear error', async () => {
    await userAdd(['dave@example.com'], 'dave password', url);
    const again = await userAdd(['Dave@Example.com'], 'other password', url);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('user-add: a user with email dave@example.com already exists\n');
  });

  it.each([
    [['not-an-email'], 'long enough password', /EMAIL must look like an email/],
    [['erin@example.com', 'root'], 'long enough password', /ROLE must be "user" or "admin"/],
    [['erin@example.com'], 'short', /at least 8 characters/],
  ])('refuses %j with a clear error', async (args, password, message) => {
    const result = await userAdd(args, password, url);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
  });
});

describeWithService('MariaDB', await mysqlReachable(), 'db-migrate and user-add against MySQL through mysql-proxy', () => {
  let proxy: RunningProxy;
  beforeAll(async () => {
    proxy = await startMysqlProxy();
  });
  afterAll(() => proxy?.close());

  it('creates the table, then a user that login can read', async () => {
    const migrated = await userAdd([], '', proxy.url, 'functions/login/db-migrate.ts');
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toMatch(/^users and login_failures tables ready \(MySQL, 127\.0\.0\.1:\d+\)/);
    expect(migrated.stdout).not.toContain('earshot-local-dev');
    const email = `frank.${Date.now()}@example.com`;
    const added = await userAdd([email], 'frank long password', proxy.url);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const users = await openUsers(new URL(proxy.url));
    expect(await verifyPassword('frank long password', (await users.findByEmail(email))!.passwordHash)).toBe(true);
    expect((await userAdd([email], 'frank long password', proxy.url)).stderr).toContain('already exists');
  });
});
