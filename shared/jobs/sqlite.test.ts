import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support';
import { openSqlite } from '../sqlite';
import { jobStoreContract } from './contract';
import { SqliteJobStore } from './sqlite';

jobStoreContract('SQLite', async () => {
  const file = join(await tempDir(), 'jobs.db');
  return new SqliteJobStore(() => openSqlite(file));
});

describe('jobs: SQLite made by an earlier version', () => {
  it('gains the owner email column; its old jobs read back without one, and new jobs keep theirs', async () => {
    const file = join(await tempDir(), 'jobs.db');
    const old = await openSqlite(file);
    old.exec(`CREATE TABLE jobs (
      id TEXT PRIMARY KEY, owner TEXT NOT NULL, filename TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('uploaded', 'converting', 'converted', 'failed')),
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, lease_until INTEGER, mp3_id TEXT UNIQUE,
      duration_seconds REAL, size_bytes INTEGER, failure TEXT,
      notify_state TEXT CHECK (notify_state IN ('sending', 'sent')), notify_claimed_at INTEGER)`);
    old.prepare(`INSERT INTO jobs (id, owner, filename, status, created_at, updated_at) VALUES ('old', 'u1', 'a.mp4', 'uploaded', ?, ?)`).run(Date.now(), Date.now());
    old.close();

    // Two processes opening the same file at once: one migrates, neither fails.
    const [jobs, other] = [new SqliteJobStore(() => openSqlite(file)), new SqliteJobStore(() => openSqlite(file))];
    const [job] = await Promise.all([jobs.get('old'), other.get('old')]);
    expect(job).toMatchObject({ id: 'old', owner: 'u1', filename: 'a.mp4' });
    expect(job).not.toHaveProperty('ownerEmail');
    // Its history starts at what it is: its status, as revision 1; it changes as any other.
    expect(job).toMatchObject({ revision: 1, transitions: [{ status: 'uploaded', revision: 1 }] });
    expect(await jobs.startConversion('old', 60_000)).toEqual(expect.any(String));
    expect((await other.get('old'))!.transitions.map((t) => `${t.status}@${t.revision}`)).toEqual(['uploaded@1', 'converting@2']);
    await jobs.create({ id: 'new', owner: 'u1', ownerEmail: 'u1@example.com', filename: 'b.mp4' });
    expect(await other.get('new')).toMatchObject({ ownerEmail: 'u1@example.com' });
    expect(await jobs.countUploads('u1', new Date(0))).toMatchObject({ total: 2, inFlight: 2 });
    await Promise.all([jobs.close(), other.close()]);
  });
});
