import { randomUUID } from 'node:crypto';
import { Client, DatabaseError } from '@planetscale/database';
import type { Role } from '../../../shared/auth';
import { DuplicateEmail, normalizeEmail, type NewUser, type UserRecord, type UserStore } from './store';

/** Users in MySQL through `@planetscale/database`: PlanetScale itself, or any MySQL behind earshot's mysql-proxy. */
export const usersSchema = `CREATE TABLE IF NOT EXISTS users (
  id CHAR(36) NOT NULL PRIMARY KEY,
  email VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  role ENUM('user', 'admin') NOT NULL DEFAULT 'user',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY users_email (email)
) DEFAULT CHARSET = utf8mb4`;

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

  /** `make db-migrate`: creates the table if it is not there. */
  async migrate(): Promise<void> {
    await this.client.execute(usersSchema);
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

  async close(): Promise<void> {}
}
