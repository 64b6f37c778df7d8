import { randomUUID } from 'node:crypto';
import { Client, DatabaseError } from '@planetscale/database';
import type { Role } from '../../../shared/auth';
import { DuplicateEmail, normalizeEmail, type FailureCount, type NewUser, type UserRecord, type UserStore } from './store';

/** Users in MySQL through `@planetscale/database`: PlanetScale itself, or any MySQL behind earshot's mysql-proxy. */
export const usersSchema = `CREATE TABLE IF NOT EXISTS users (
  id CHAR(36) NOT NULL PRIMARY KEY,
  email VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  role ENUM('user', 'admin') NOT NULL DEFAULT 'user',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY users_email (email)
) DEFAULT CHARSET = utf8mb4`;

/** Failed logins per account or client address (see ../throttle.ts), shared by every pod. */
export const loginFailuresSchema = `CREATE TABLE IF NOT EXISTS login_failures (
  throttle_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  failures INT UNSIGNED NOT NULL,
  last_failed_at BIGINT NOT NULL,
  KEY login_failures_last (last_failed_at)
)`;

interface Row {
  id: string;
  email: string;
  password_hash: string;
  role: Role;
  created_at: string;
}

export class MysqlUserStore implements UserStore {
  private readonly client: Client;

  constructor(url: string) {
    this.client = new Client({ url });
  }

  /** `make db-migrate`: creates the tables that are not there. */
  async migrate(): Promise<void> {
    await this.client.execute(usersSchema);
    await this.client.execute(loginFailuresSchema);
  }

  async create(user: NewUser): Promise<UserRecord> {
    const record: UserRecord = { ...user, id: randomUUID(), email: normalizeEmail(user.email), createdAt: new Date() };
    try {
      await this.client.execute('INSERT INTO users (id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)', [
        record.id,
        record.email,
        record.passwordHash,
        record.role,
        record.createdAt.toISOString().replace('T', ' ').replace('Z', ''),
      ]);
    } catch (err) {
      if (err instanceof DatabaseError && (err.body?.code === 'ALREADY_EXISTS' || /Duplicate entry/.test(err.message))) {
        throw new DuplicateEmail(record.email);
      }
      throw err;
    }
    return record;
  }

  async findByEmail(email: string): Promise<UserRecord | null> {
    const { rows } = await this.client.execute<Row>('SELECT id, email, password_hash, role, created_at FROM users WHERE email = ?', [normalizeEmail(email)]);
    const row = rows[0];
    if (!row) return null;
    return { id: row.id, email: row.email, passwordHash: row.password_hash, role: row.role, createdAt: new Date(`${row.created_at.replace(' ', 'T')}Z`) };
  }

  async count(): Promise<number> {
    const { rows } = await this.client.execute<{ n: string }>('SELECT COUNT(*) AS n FROM users');
    return Number(rows[0]?.n ?? 0);
  }

  async failures(keys: string[]): Promise<FailureCount[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.client.execute<{ throttle_key: string; failures: string; last_failed_at: string }>(
      `SELECT throttle_key, failures, last_failed_at FROM login_failures WHERE throttle_key IN (${keys.map(() => '?').join(', ')})`,
      keys,
    );
    return rows.map((r) => ({ key: r.throttle_key, failures: Number(r.failures), lastFailedAt: Number(r.last_failed_at) }));
  }

  async recordFailure(key: string, at: number, forgetBefore: number): Promise<void> {
    // One statement, so pods never lose a count; `failures` is assigned first, while
    // `last_failed_at` still holds the previous failure's time.
    await this.client.execute(
      `INSERT INTO login_failures (throttle_key, failures, last_failed_at) VALUES (?, 1, ?)
       ON DUPLICATE KEY UPDATE
         failures = IF(last_failed_at < ?, 1, failures + 1),
         last_failed_at = GREATEST(last_failed_at, ?)`,
      [key, at, forgetBefore, at],
    );
  }

  async clearFailures(key: string): Promise<void> {
    await this.client.execute('DELETE FROM login_failures WHERE throttle_key = ?', [key]);
  }

  async forgetFailures(before: number): Promise<void> {
    await this.client.execute('DELETE FROM login_failures WHERE last_failed_at < ?', [before]);
  }

  async close(): Promise<void> {}
}
