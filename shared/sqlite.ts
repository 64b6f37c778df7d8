import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * Opens a SQLite file shared by several local processes: WAL so readers never block the
 * writer, and a busy timeout so concurrent writers wait instead of failing.
 * The driver is imported here, on first use, so functions that never use SQLite never load it.
 */
export async function openSqlite(file: string): Promise<BetterSqlite3.Database> {
  const { default: Database } = await import('better-sqlite3');
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = NORMAL');
  return db;
}
