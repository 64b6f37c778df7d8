import { randomUUID } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { Role } from '../../../shared/auth';
import { DuplicateEmail, normalizeEmail, type NewUser, type UserRecord, type UserStore } from './store';

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
    )`);
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

  async close(): Promise<void> {
    this.db.close();
  }
}
