/**
 * Sessions of the PlanetScale HTTP API over MySQL connections. A statement outside a
 * transaction runs on any pooled connection; BEGIN pins one to the session until COMMIT or
 * ROLLBACK, so `transaction()` is atomic. One session's statements run one at a time, in order.
 * A session idle past its limit is dropped, rolling back what it left open.
 */
import { createHash, randomUUID } from 'node:crypto';
import mysql, { type FieldPacket, type Pool, type PoolConnection } from 'mysql2/promise';
import { toWireResult, type WireResult } from './wire';

export interface Credentials {
  user: string;
  password: string;
}

export interface Target {
  host: string;
  port: number;
  database: string;
}

interface Session {
  id: string;
  key: string;
  pinned?: PoolConnection;
  tail: Promise<unknown>;
  timer?: NodeJS.Timeout;
}

export class SqlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const begins = /^\s*(BEGIN|START\s+TRANSACTION)\b/i;
const ends = /^\s*(COMMIT|ROLLBACK)\b(?!\s+TO\b)/i;

export class SessionManager {
  private readonly pools = new Map<string, Pool>();
  private readonly sessions = new Map<string, Session>();
  /** Sessions dropped while a transaction was open: their next statement must fail, not run alone. */
  private readonly aborted = new Set<string>();

  constructor(
    private readonly target: Target,
    private readonly idleMs: number,
  ) {}

  async execute(credentials: Credentials, sessionId: string | null, sql: string): Promise<{ session: string; result: WireResult }> {
    const key = `${credentials.user}\0${createHash('sha256').update(credentials.password).digest('hex')}`;
    if (sessionId && this.aborted.delete(sessionId)) {
      throw new SqlError('ABORTED', 'the session expired with a transaction open; it was rolled back');
    }
    let session = sessionId ? this.sessions.get(sessionId) : undefined;
    if (session && session.key !== key) throw new SqlError('PERMISSION_DENIED', 'the session belongs to other credentials');
    if (!session) {
      session = { id: sessionId ?? randomUUID(), key, tail: Promise.resolve() };
      this.sessions.set(session.id, session);
    }
    const run = session.tail.then(() => this.run(session, credentials, sql));
    session.tail = run.catch(() => undefined);
    this.touch(session);
    return { session: session.id, result: await run };
  }

  /** A new session, after checking the credentials against MySQL. */
  async open(credentials: Credentials): Promise<string> {
    return (await this.execute(credentials, null, 'SELECT 1')).session;
  }

  async close(): Promise<void> {
    for (const session of this.sessions.values()) await this.drop(session);
    await Promise.all([...this.pools.values()].map((pool) => pool.end()));
  }

  private async run(session: Session, credentials: Credentials, sql: string): Promise<WireResult> {
    const connection = session.pinned ?? (await this.connect(session.key, credentials));
    try {
      const [result, fields] = await connection.query({
        sql,
        rowsAsArray: true,
        // The raw bytes of each column, as the text protocol sent them.
        typeCast: (field: { buffer(): Buffer | null }) => field.buffer(),
      } as never);
      if (begins.test(sql)) session.pinned = connection;
      else if (ends.test(sql)) session.pinned = undefined; // released below
      return toWireResult(result, fields as FieldPacket[] | undefined);
    } catch (err) {
      throw toSqlError(err);
    } finally {
      if (!session.pinned) connection.release();
    }
  }

  private async connect(key: string, { user, password }: Credentials): Promise<PoolConnection> {
    let pool = this.pools.get(key);
    if (!pool) {
      pool = mysql.createPool({
        ...this.target,
        user,
        password,
        connectionLimit: 10,
        supportBigNumbers: true,
        bigNumberStrings: true,
        charset: 'utf8mb4',
      });
      this.pools.set(key, pool);
    }
    try {
      return await pool.getConnection();
    } catch (err) {
      if ((err as { errno?: number }).errno === 1045) {
        this.pools.delete(key);
        void pool.end();
        throw new SqlError('UNAUTHENTICATED', 'access denied: wrong user or password');
      }
      throw new SqlError('UNAVAILABLE', `cannot reach MySQL: ${(err as Error).message}`);
    }
  }

  private touch(session: Session) {
    clearTimeout(session.timer);
    session.timer = setTimeout(() => void session.tail.then(() => this.drop(session)), this.idleMs);
    session.timer.unref();
  }

  private async drop(session: Session) {
    clearTimeout(session.timer);
    this.sessions.delete(session.id);
    const pinned = session.pinned;
    if (!pinned) return;
    session.pinned = undefined;
    this.aborted.add(session.id);
    if (this.aborted.size > 10_000) this.aborted.delete(this.aborted.values().next().value!);
    try {
      await pinned.query('ROLLBACK');
      pinned.release();
    } catch {
      pinned.destroy();
    }
  }
}

/** MySQL errors in the driver's terms: a Vitess-like code, and the message with errno and sqlstate. */
function toSqlError(err: unknown): SqlError {
  if (err instanceof SqlError) return err;
  const e = err as { errno?: number; sqlState?: string; sqlMessage?: string; message: string };
  if (!e.errno) return new SqlError('UNAVAILABLE', e.message);
  const code = e.errno === 1062 ? 'ALREADY_EXISTS' : e.errno === 1064 || e.errno === 1054 || e.errno === 1146 ? 'INVALID_ARGUMENT' : 'UNKNOWN';
  return new SqlError(code, `${e.sqlMessage ?? e.message} (errno ${e.errno}) (sqlstate ${e.sqlState ?? 'HY000'})`);
}
