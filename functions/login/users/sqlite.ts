import { randomUUID } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { Role } from '../../../shared/auth';
import { DuplicateEmail, normalizeEmail, type FailureCount, type NewUser, type UserRecord, type UserStore } from './store';

interface Row {
  id: string;
  email: string;
  password_hash: string;
  role: Role;
  created_at: number;
}

export class SqliteUserStore implements UserStore {
  constructor(private readonly db: BetterSqlite3.Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS users (
      id TEXT PRIMARY KEY,
      email TEXT NOT NULL UNIQUE,
      password_hash TEXT NOT NULL,
      role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
      created_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS login_failures (
      throttle_key TEXT PRIMARY KEY,
      failures INTEGER NOT NULL,
      last_failed_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS login_failures_last ON login_failures (last_failed_at)`);
  }

  async create(user: NewUser): Promise<UserRecord> {
    const record: UserRecord = { ...user, id: randomUUID(), email: normalizeEmail(user.email), createdAt: new Date() };
    try {
      this.db
        .prepare(`INSERT INTO users (id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)`)
        .run(record.id, record.email, record.passwordHash, record.role, record.createdAt.getTime());
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new DuplicateEmail(record.email);
      throw err;
    }
    return record;
  }

  async findByEmail(email: string): Promise<UserRecord | null> {
    const row = this.db.prepare(`SELECT * FROM users WHERE email = ?`).get(normalizeEmail(email)) as Row | undefined;
    if (!row) return null;
    return { id: row.id, email: row.email, passwordHash: row.password_hash, role: row.role, createdAt: new Date(row.created_at) };
  }

  async count(): Promise<number> {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM users`).get() as { n: number }).n;
  }

  async failures(keys: string[]): Promise<FailureCount[]> {
    if (keys.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT throttle_key, failures, last_failed_at FROM login_failures WHERE throttle_key IN (${keys.map(() => '?').join(', ')})`)
      .all(...keys) as { throttle_key: string; failures: number; last_failed_at: number }[];
    return rows.map((r) => ({ key: r.throttle_key, failures: r.failures, lastFailedAt: r.last_failed_at }));
  }

  async recordFailure(key: string, at: number, forgetBefore: number): Promise<void> {
    // One statement, so processes sharing the file never lose a count.
    this.db
      .prepare(
        `INSERT INTO login_failures (throttle_key, failures, last_failed_at) VALUES (?, 1, ?)
         ON CONFLICT (throttle_key) DO UPDATE SET
           failures = CASE WHEN last_failed_at < ? THEN 1 ELSE failures + 1 END,
           last_failed_at = MAX(last_failed_at, excluded.last_failed_at)`,
      )
      .run(key, at, forgetBefore);
  }

  async clearFailures(key: string): Promise<void> {
    this.db.prepare(`DELETE FROM login_failures WHERE throttle_key = ?`).run(key);
  }

  async forgetFailures(before: number): Promise<void> {
    this.db.prepare(`DELETE FROM login_failures WHERE last_failed_at < ?`).run(before);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
