import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError } from './config';

/**
 * The SQLite stores are for make dev and the tests: the images carry no native module. There, a
 * setting that leaves a store on SQLite is a configuration error said at start (exit 78), not a
 * module-not-found crash. Resolved, not loaded, so that a start that has it pays nothing.
 */
export function requireSqlite(setting: string, instead: string): void {
  try {
    createRequire(import.meta.url).resolve('better-sqlite3');
  } catch {
    throw new ConfigError(setting, `leaves this store on local SQLite, which this build cannot open (better-sqlite3 comes with a source checkout, not with the images): set ${setting} to ${instead}`);
  }
}

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
