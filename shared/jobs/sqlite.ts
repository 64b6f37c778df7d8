import { randomUUID } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { ConvertOptions } from '../convert-options';
import type { Job, JobPosition, JobStatus, JobStore, Mp3Result, NewJob, NotificationClaim, Transition, UploadCounts } from './store';

interface Row {
  id: string;
  owner: string;
  owner_email: string | null;
  filename: string;
  /** JSON of the conversion options asked for, or null. */
  options: string | null;
  status: JobStatus;
  created_at: number;
  updated_at: number;
  mp3_id: string | null;
  duration_seconds: number | null;
  size_bytes: number | null;
  audio_track: number | null;
  failure: string | null;
  notify_state: 'sending' | 'sent' | null;
  revision: number;
  /** JSON: [{status, revision, at (ms)}], oldest first. */
  transitions: string;
  percent: number | null;
  percent_revision: number | null;
  expires_at: number | null;
  expired: 0 | 1 | null;
}

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  owner_email TEXT,
  filename TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('uploaded', 'converting', 'converted', 'failed')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  lease_until INTEGER,
  mp3_id TEXT UNIQUE,
  duration_seconds REAL,
  size_bytes INTEGER,
  failure TEXT,
  notify_state TEXT CHECK (notify_state IN ('sending', 'sent')),
  notify_claimed_at INTEGER,
  conversion TEXT,
  revision INTEGER NOT NULL DEFAULT 1,
  transitions TEXT NOT NULL DEFAULT '[]',
  percent INTEGER,
  percent_revision INTEGER,
  expires_at INTEGER,
  expired INTEGER,
  options TEXT,
  audio_track INTEGER
)`;

/** Columns added since the first version, as `ALTER TABLE … ADD COLUMN` takes them. */
const added: Record<string, string> = {
  owner_email: 'TEXT',
  conversion: 'TEXT',
  revision: 'INTEGER NOT NULL DEFAULT 1',
  transitions: "TEXT NOT NULL DEFAULT '[]'",
  percent: 'INTEGER',
  percent_revision: 'INTEGER',
  expires_at: 'INTEGER',
  expired: 'INTEGER',
  options: 'TEXT',
  audio_track: 'INTEGER',
};

/**
 * Brings a table made by an earlier version up to `schema`. Its jobs keep no owner email, and
 * their history starts at what they are now: their status, as revision 1.
 */
function migrate(db: BetterSqlite3.Database): void {
  const columns = (db.pragma('table_info(jobs)') as { name: string }[]).map((c) => c.name);
  for (const [name, type] of Object.entries(added)) if (!columns.includes(name)) db.exec(`ALTER TABLE jobs ADD COLUMN ${name} ${type}`);
  if (!columns.includes('transitions')) {
    db.exec(`UPDATE jobs SET transitions = json_array(json_object('status', status, 'revision', revision, 'at', updated_at))`);
  }
  // One index serves the day's count and the newest-first pages (read backwards); it replaces the
  // two earlier versions made.
  db.exec('DROP INDEX IF EXISTS jobs_by_owner_newest');
  db.exec('DROP INDEX IF EXISTS jobs_by_owner');
  db.exec('CREATE INDEX IF NOT EXISTS jobs_by_owner_created ON jobs (owner, created_at, id)');
  // The sweeper's questions: which MP3s are due, which uploads were left waiting.
  db.exec('CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs (expires_at) WHERE expired IS NULL');
  db.exec('CREATE INDEX IF NOT EXISTS jobs_by_status_age ON jobs (status, updated_at)');
}

/**
 * SET terms that record the job entering `status` as the revision this same UPDATE makes (the
 * right-hand sides all read the row as it was). Binds one parameter: the time, in ms.
 */
const enter = (status: JobStatus) =>
  `status = '${status}', revision = revision + 1, transitions = json_insert(transitions, '$[#]', json_object('status', '${status}', 'revision', revision + 1, 'at', ?))`;

/** The database, and each statement prepared once per connection and kept (the SQL texts are this file's own, a fixed set). */
interface Opened {
  db: BetterSqlite3.Database;
  prepare(sql: string): BetterSqlite3.Statement;
}

export class SqliteJobStore implements JobStore {
  private opened?: Promise<Opened>;

  /** Opened on first use, as the MongoDB store connects on first use: starting costs nothing. */
  constructor(private readonly open: () => Promise<BetterSqlite3.Database>) {}

  /**
   * Statements are kept because compiling one cost more than running it: preparing
   * `SELECT * FROM jobs WHERE id = ?` on every GET /jobs/:id took about 35 µs of a 240 µs request.
   */
  private db(): Promise<Opened> {
    this.opened ??= this.open().then((db) => {
      // Immediate: of several processes opening one file, one migrates while the others wait.
      db.transaction(() => {
        db.exec(schema);
        migrate(db);
      }).immediate();
      const statements = new Map<string, BetterSqlite3.Statement>();
      const prepare = (sql: string) => {
        let statement = statements.get(sql);
        if (!statement) statements.set(sql, (statement = db.prepare(sql)));
        return statement;
      };
      return { db, prepare };
    });
    return this.opened;
  }

  async create(job: NewJob): Promise<Job> {
    const now = Date.now();
    (await this.db())
      .prepare(
        `INSERT INTO jobs (id, owner, owner_email, filename, options, status, created_at, updated_at, revision, transitions)
         VALUES (?, ?, ?, ?, ?, 'uploaded', ?, ?, 1, json_array(json_object('status', 'uploaded', 'revision', 1, 'at', ?)))`,
      )
      .run(job.id, job.owner, job.ownerEmail ?? null, job.filename, job.options ? JSON.stringify(job.options) : null, now, now, now);
    return (await this.get(job.id))!;
  }

  async get(id: string): Promise<Job | null> {
    const row = (await this.db()).prepare(`SELECT * FROM jobs WHERE id = ?`).get(id) as Row | undefined;
    return row ? toJob(row) : null;
  }

  async delete(id: string): Promise<void> {
    (await this.db()).prepare(`DELETE FROM jobs WHERE id = ?`).run(id);
  }

  async countUploads(owner: string, since: Date): Promise<UploadCounts> {
    const row = (await this.db())
      .prepare(
        `SELECT COUNT(*) AS total, COUNT(CASE WHEN status IN ('uploaded', 'converting') THEN 1 END) AS in_flight, MIN(created_at) AS oldest
         FROM jobs WHERE owner = ? AND created_at >= ?`,
      )
      .get(owner, since.getTime()) as { total: number; in_flight: number; oldest: number | null };
    return { total: row.total, inFlight: row.in_flight, oldest: row.oldest === null ? null : new Date(row.oldest) };
  }

  async listByOwner(owner: string, limit: number, after?: JobPosition): Promise<Job[]> {
    const db = await this.db();
    const rows = after
      ? db
          .prepare(`SELECT * FROM jobs WHERE owner = ? AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?`)
          .all(owner, after.createdAt.getTime(), after.createdAt.getTime(), after.id, limit)
      : db.prepare(`SELECT * FROM jobs WHERE owner = ? ORDER BY created_at DESC, id DESC LIMIT ?`).all(owner, limit);
    return (rows as Row[]).map(toJob);
  }

  async startConversion(id: string, leaseMs: number): Promise<string | null> {
    const now = Date.now();
    const conversion = randomUUID();
    const { changes } = (await this.db())
      .prepare(
        `UPDATE jobs SET lease_until = ?, updated_at = ?, conversion = ?, percent = NULL, percent_revision = NULL, ${enter('converting')}
         WHERE id = ? AND (status = 'uploaded' OR (status = 'converting' AND lease_until < ?))`,
      )
      .run(now + leaseMs, now, conversion, now, id, now);
    return changes === 1 ? conversion : null;
  }

  async reportProgress(id: string, conversion: string, percent: number): Promise<void> {
    (await this.db())
      .prepare(
        `UPDATE jobs SET percent = ?, percent_revision = revision + 1, revision = revision + 1
         WHERE id = ? AND status = 'converting' AND conversion = ? AND (percent IS NULL OR percent < ?)`,
      )
      .run(percent, id, conversion, percent);
  }

  async extendConversion(id: string, leaseMs: number): Promise<void> {
    (await this.db()).prepare(`UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'converting'`).run(Date.now() + leaseMs, id);
  }

  async finishConversion(id: string, mp3: Mp3Result, expiresAt?: Date): Promise<void> {
    await this.settle(id, 'converted', 'mp3_id = ?, duration_seconds = ?, size_bytes = ?, audio_track = ?, expires_at = ?', [
      mp3.id,
      mp3.durationSeconds,
      mp3.sizeBytes,
      mp3.audioTrack ?? null,
      expiresAt?.getTime() ?? null,
    ]);
  }

  async failConversion(id: string, reason: string): Promise<void> {
    await this.settle(id, 'failed', 'failure = ?', [reason]);
  }

  async releaseConversion(id: string): Promise<void> {
    await this.settle(id, 'uploaded');
  }

  /** converting → `status`, and only from converting; the lease and the progress go with it. */
  private async settle(id: string, status: JobStatus, set = '', values: unknown[] = []): Promise<void> {
    const now = Date.now();
    (await this.db())
      .prepare(
        `UPDATE jobs SET ${set ? `${set}, ` : ''}lease_until = NULL, conversion = NULL, percent = NULL, percent_revision = NULL, updated_at = ?, ${enter(status)}
         WHERE id = ? AND status = 'converting'`,
      )
      .run(...values, now, now, id);
  }

  async claimNotification(id: string, staleMs: number): Promise<NotificationClaim> {
    const now = Date.now();
    const { changes } = (await this.db())
      .prepare(
        `UPDATE jobs SET notify_state = 'sending', notify_claimed_at = ?
         WHERE id = ? AND (notify_state IS NULL OR (notify_state = 'sending' AND notify_claimed_at < ?))`,
      )
      .run(now, id, now - staleMs);
    if (changes === 1) return 'claimed';
    const row = (await this.db()).prepare(`SELECT notify_state FROM jobs WHERE id = ?`).get(id) as Pick<Row, 'notify_state'> | undefined;
    if (!row) return 'missing';
    return row.notify_state === 'sent' ? 'sent' : 'busy';
  }

  async finishNotification(id: string): Promise<void> {
    (await this.db()).prepare(`UPDATE jobs SET notify_state = 'sent' WHERE id = ?`).run(id);
  }

  async releaseNotification(id: string): Promise<void> {
    (await this.db()).prepare(`UPDATE jobs SET notify_state = NULL, notify_claimed_at = NULL WHERE id = ? AND notify_state = 'sending'`).run(id);
  }

  async listExpiring(now: Date, limit: number): Promise<Job[]> {
    const rows = (await this.db())
      .prepare(`SELECT * FROM jobs WHERE expired IS NULL AND expires_at <= ? AND status = 'converted' ORDER BY expires_at LIMIT ?`)
      .all(now.getTime(), limit);
    return (rows as Row[]).map(toJob);
  }

  async markExpired(id: string): Promise<void> {
    (await this.db()).prepare(`UPDATE jobs SET expired = 1 WHERE id = ?`).run(id);
  }

  async listAbandoned(before: Date, limit: number): Promise<Job[]> {
    const rows = (await this.db())
      .prepare(`SELECT * FROM jobs WHERE status = 'uploaded' AND updated_at < ? ORDER BY updated_at LIMIT ?`)
      .all(before.getTime(), limit);
    return (rows as Row[]).map(toJob);
  }

  async close(): Promise<void> {
    if (this.opened) (await this.opened).db.close();
  }
}

function toJob(row: Row): Job {
  return {
    id: row.id,
    owner: row.owner,
    ...(row.owner_email !== null && { ownerEmail: row.owner_email }),
    filename: row.filename,
    ...(row.options !== null && { options: JSON.parse(row.options) as ConvertOptions }),
    status: row.status,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    ...(row.mp3_id !== null && {
      mp3: {
        id: row.mp3_id,
        durationSeconds: row.duration_seconds ?? 0,
        sizeBytes: row.size_bytes ?? 0,
        ...(row.audio_track !== null && { audioTrack: row.audio_track }),
      },
    }),
    ...(row.failure !== null && { failure: row.failure }),
    ...(row.expires_at !== null && { expiresAt: new Date(row.expires_at) }),
    ...(row.expired === 1 && { expired: true as const }),
    revision: row.revision,
    transitions: (JSON.parse(row.transitions) as { status: JobStatus; revision: number; at: number }[]).map(
      (t): Transition => ({ status: t.status, revision: t.revision, at: new Date(t.at) }),
    ),
    ...(row.percent !== null && { progress: { percent: row.percent, revision: row.percent_revision ?? row.revision } }),
  };
}
