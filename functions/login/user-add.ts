/**
 * `make user-add EMAIL=a@b.c [ROLE=admin]`: reads the password from stdin and stores its
 * scrypt hash. The only way users are created; passwords never appear in arguments or logs.
 */
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { pathToFileURL } from 'node:url';
import { ConfigError, envReader } from '../../shared/config';
import { dataDir } from '../../shared/settings';
import { hashPassword } from './password';
import { DuplicateEmail } from './users/store';
import { openUsers } from './users/open';

const [email, role = 'user'] = process.argv.slice(2);
const fail = (message: string): never => {
  process.stderr.write(`user-add: ${message}\n`);
  process.exit(1);
};

if (!email || !/^[^\s@]+@[^\s@]+$/.test(email)) fail('usage: user-add EMAIL [user|admin] < password (EMAIL must look like an email)');
if (role !== 'user' && role !== 'admin') fail(`ROLE must be "user" or "admin", got "${role}"`);
if (process.stdin.isTTY) process.stderr.write('Password (then Enter and Ctrl-D): ');
const password = (await text(process.stdin)).replace(/\r?\n$/, '');
if (password.length < 8) fail('the password must have at least 8 characters');

try {
  const read = envReader(process.env);
  const users = await openUsers(read.url('USERS_DB_URL', pathToFileURL(join(dataDir(read), 'users.db')).href));
  try {
    const user = await users.create({ email: email!, passwordHash: await hashPassword(password), role: role as 'user' | 'admin' });
    process.stdout.write(`created ${user.role} ${user.email} (id ${user.id})\n`);
  } finally {
    await users.close();
  }
} catch (err) {
  if (err instanceof DuplicateEmail || err instanceof ConfigError) fail(err.message);
  throw err;
}
