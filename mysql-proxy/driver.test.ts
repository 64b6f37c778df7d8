/**
 * `@planetscale/database` through mysql-proxy (its own process) to MariaDB: every column type
 * the driver casts comes back as the driver casts it from PlanetScale, and transactions,
 * counts, ids and errors behave.
 */
import { connect, DatabaseError, type Connection } from '@planetscale/database';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mysqlReachable, startMysqlProxy, type RunningProxy } from '../test/mysql';
import { describeWithService } from '../test/services';

const available = await mysqlReachable();
const table = `conformance_${process.pid}_${Date.now()}`;

const columns = {
  i8: 'TINYINT', u8: 'TINYINT UNSIGNED', i16: 'SMALLINT', u16: 'SMALLINT UNSIGNED', i24: 'MEDIUMINT', u24: 'MEDIUMINT UNSIGNED',
  i32: 'INT', u32: 'INT UNSIGNED', i64: 'BIGINT', u64: 'BIGINT UNSIGNED', dcm: 'DECIMAL(12,3)', f32: 'FLOAT', f64: 'DOUBLE',
  d: 'DATE', dt: 'DATETIME(3)', ts: 'TIMESTAMP(3) NULL', t: 'TIME', y: 'YEAR', ch: 'CHAR(8)', vc: 'VARCHAR(64)', tx: 'TEXT',
  bin: 'BINARY(4)', vb: 'VARBINARY(16)', bl: 'BLOB', js: 'JSON', en: "ENUM('a','b','c')", st: "SET('x','y','z')", bt: 'BIT(8)',
} as const;

const values: Record<keyof typeof columns, string> = {
  i8: '-128', u8: '255', i16: '-32768', u16: '65535', i24: '-8388608', u24: '16777215', i32: '-2147483648', u32: '4294967295',
  i64: '-9223372036854775808', u64: '18446744073709551615', dcm: "'-123456789.125'", f32: '1.5', f64: '3.141592653589793',
  d: "'2024-02-29'", dt: "'2024-02-29 13:14:15.123'", ts: "'2024-02-29 13:14:15.123'", t: "'-838:59:59'", y: '2024',
  ch: "'abc'", vc: "'héllo ✓ 🎧'", tx: "'日本語のテキスト'", bin: "x'00ff0010'", vb: "x'deadbeef'", bl: "x'000102fdfeff'",
  js: `'{"a":[1,2,{"b":null}],"é":"✓"}'`, en: "'b'", st: "'x,z'", bt: "b'10100101'",
};

const expected: Record<keyof typeof columns, unknown> = {
  i8: -128, u8: 255, i16: -32768, u16: 65535, i24: -8388608, u24: 16777215, i32: -2147483648, u32: 4294967295,
  i64: '-9223372036854775808', u64: '18446744073709551615', dcm: '-123456789.125', f32: 1.5, f64: 3.141592653589793,
  d: '2024-02-29', dt: '2024-02-29 13:14:15.123', ts: '2024-02-29 13:14:15.123', t: '-838:59:59', y: 2024,
  ch: 'abc', vc: 'héllo ✓ 🎧', tx: '日本語のテキスト', bin: new Uint8Array([0, 255, 0, 16]), vb: new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
  bl: new Uint8Array([0, 1, 2, 0xfd, 0xfe, 0xff]), js: { a: [1, 2, { b: null }], é: '✓' }, en: 'b', st: 'x,z', bt: new Uint8Array([0xa5]),
};

const types: Record<keyof typeof columns, string> = {
  i8: 'INT8', u8: 'UINT8', i16: 'INT16', u16: 'UINT16', i24: 'INT24', u24: 'UINT24', i32: 'INT32', u32: 'UINT32', i64: 'INT64', u64: 'UINT64',
  dcm: 'DECIMAL', f32: 'FLOAT32', f64: 'FLOAT64', d: 'DATE', dt: 'DATETIME', ts: 'TIMESTAMP', t: 'TIME', y: 'YEAR', ch: 'CHAR', vc: 'VARCHAR',
  tx: 'TEXT', bin: 'BINARY', vb: 'VARBINARY', bl: 'BLOB', js: 'JSON', en: 'ENUM', st: 'SET', bt: 'BIT',
};

describeWithService('MariaDB', available, '@planetscale/database through mysql-proxy', () => {
  let proxy: RunningProxy;
  let db: Connection;

  beforeAll(async () => {
    proxy = await startMysqlProxy({ SESSION_IDLE_SECONDS: '1' });
    db = connect({ url: proxy.url });
    const definitions = Object.entries(columns).map(([name, type]) => `${name} ${type}`);
    await db.execute(`CREATE TABLE ${table} (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, ${definitions.join(', ')}) DEFAULT CHARSET = utf8mb4`);
  });
  afterAll(async () => {
    await db?.execute(`DROP TABLE IF EXISTS ${table}`);
    await db?.execute(`DROP TABLE IF EXISTS ${table}_tx`);
    await proxy?.close();
  });

  it('returns every column type as the driver casts it', async () => {
    const names = Object.keys(columns);
    const inserted = await db.execute(`INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((n) => values[n as keyof typeof columns]).join(', ')})`);
    const { rows, types: got } = await db.execute(`SELECT ${names.join(', ')} FROM ${table} WHERE id = ?`, [inserted.insertId]);
    const row = rows[0] as Record<string, unknown>;
    for (const name of names as (keyof typeof columns)[]) {
      // MariaDB stores JSON as LONGTEXT (MySQL and PlanetScale have a JSON type): the text parses to the same value.
      const value = name === 'js' && typeof row[name] === 'string' ? JSON.parse(row[name] as string) : row[name];
      expect(value, name).toEqual(expected[name]);
      if (name !== 'js') expect(got[name], name).toBe(types[name]);
    }
    expect(['JSON', 'TEXT']).toContain(got.js);
  });

  it('returns NULL of every type as null', async () => {
    const inserted = await db.execute(`INSERT INTO ${table} () VALUES ()`);
    const { rows } = await db.execute(`SELECT * FROM ${table} WHERE id = ?`, [inserted.insertId]);
    const row = rows[0] as Record<string, unknown>;
    for (const name of Object.keys(columns)) expect(row[name], name).toBeNull();
  });

  it('reports rowsAffected and insertId (as a string, BIGINT-safe)', async () => {
    const first = await db.execute(`INSERT INTO ${table} (i32) VALUES (1), (2), (3)`);
    expect(first.rowsAffected).toBe(3);
    expect(first.insertId).toMatch(/^\d+$/);
    const updated = await db.execute(`UPDATE ${table} SET i32 = i32 + 10 WHERE i32 IN (1, 2)`);
    expect(updated.rowsAffected).toBe(2);
    await db.execute(`ALTER TABLE ${table} AUTO_INCREMENT = 9007199254740993`);
    const big = await db.execute(`INSERT INTO ${table} (i32) VALUES (4)`);
    expect(big.insertId).toBe('9007199254740993');
  });

  it('commits a transaction atomically: nothing is seen before COMMIT', async () => {
    await db.execute(`CREATE TABLE IF NOT EXISTS ${table}_tx (id INT PRIMARY KEY, v VARCHAR(10))`);
    const seenInside = await connect({ url: proxy.url }).transaction(async (tx) => {
      await tx.execute(`INSERT INTO ${table}_tx VALUES (1, 'one')`);
      await tx.execute(`INSERT INTO ${table}_tx VALUES (2, 'two')`);
      const outside = await db.execute(`SELECT COUNT(*) AS n FROM ${table}_tx`);
      return (outside.rows[0] as { n: string }).n;
    });
    expect(seenInside).toBe('0');
    expect((await db.execute(`SELECT COUNT(*) AS n FROM ${table}_tx`)).rows[0]).toEqual({ n: '2' });
  });

  it('rolls a transaction back when its function throws', async () => {
    await expect(
      connect({ url: proxy.url }).transaction(async (tx) => {
        await tx.execute(`INSERT INTO ${table}_tx VALUES (3, 'three')`);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await db.execute(`SELECT COUNT(*) AS n FROM ${table}_tx WHERE id = 3`)).rows[0]).toEqual({ n: '0' });
  });

  it('runs the statements of one session in order, even when sent at once', async () => {
    const results = await connect({ url: proxy.url }).transaction(async (tx) =>
      Promise.all([
        tx.execute(`INSERT INTO ${table}_tx VALUES (10, 'a')`),
        tx.execute(`UPDATE ${table}_tx SET v = 'b' WHERE id = 10`),
        tx.execute(`SELECT v FROM ${table}_tx WHERE id = 10`),
      ]),
    );
    expect(results[2].rows).toEqual([{ v: 'b' }]);
  });

  it('rolls back a transaction left open past the idle limit, and says so', async () => {
    const conn = connect({ url: proxy.url });
    await conn.execute('BEGIN');
    await conn.execute(`INSERT INTO ${table}_tx VALUES (20, 'abandoned')`);
    await new Promise((r) => setTimeout(r, 1600));
    const error = await conn.execute('COMMIT').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).body.code).toBe('ABORTED');
    expect((await db.execute(`SELECT COUNT(*) AS n FROM ${table}_tx WHERE id = 20`)).rows[0]).toEqual({ n: '0' });
  });

  it('surfaces SQL errors as DatabaseError with a code and MySQL\'s errno', async () => {
    const syntax = await db.execute('SELEC nonsense').catch((e: unknown) => e);
    expect(syntax).toBeInstanceOf(DatabaseError);
    expect((syntax as DatabaseError).body.code).toBe('INVALID_ARGUMENT');
    expect((syntax as DatabaseError).message).toMatch(/errno 1064/);
    await db.execute(`INSERT INTO ${table}_tx VALUES (30, 'x')`);
    const duplicate = await db.execute(`INSERT INTO ${table}_tx VALUES (30, 'y')`).catch((e: unknown) => e);
    expect((duplicate as DatabaseError).body.code).toBe('ALREADY_EXISTS');
    expect((duplicate as DatabaseError).message).toMatch(/Duplicate entry/);
  });

  it('refuses wrong credentials with 401 UNAUTHENTICATED', async () => {
    const wrong = proxy.url.replace('earshot-local-dev', 'wrong-password');
    const error = await connect({ url: wrong }).execute('SELECT 1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).status).toBe(401);
    expect((error as DatabaseError).body.code).toBe('UNAUTHENTICATED');
  });

  it('answers bad requests in the driver\'s error shape, and keeps serving', async () => {
    const base = `http://127.0.0.1:${proxy.port}/psdb.v1alpha1.Database`;
    const auth = { authorization: `Basic ${Buffer.from('earshot:earshot-local-dev').toString('base64')}`, 'content-type': 'application/json' };
    const cases: [string, RequestInit, number][] = [
      ['/Execute', { method: 'POST', headers: auth, body: 'not json' }, 400],
      ['/Execute', { method: 'POST', headers: auth, body: '{"session": null}' }, 400],
      ['/Execute', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"SELECT 1"}' }, 401],
      ['/Nope', { method: 'POST', headers: auth, body: '{}' }, 404],
    ];
    for (const [path, init, status] of cases) {
      const res = await fetch(`${base}${path}`, init);
      expect(res.status, path).toBe(status);
      expect(((await res.json()) as { error: { code: string; message: string } }).error.code).toMatch(/^[A-Z_]+$/);
    }
    const session = await fetch(`${base}/CreateSession`, { method: 'POST', headers: auth, body: '{}' });
    expect(typeof ((await session.json()) as { session: unknown }).session).toBe('string');
    expect((await db.execute('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('never logs queries or credentials', () => {
    const log = proxy.output.join('\n');
    expect(log).toContain('"msg":"request"');
    expect(log).not.toContain(table);
    expect(log).not.toContain('earshot-local-dev');
    expect(log).not.toContain('SELEC');
  });
});
