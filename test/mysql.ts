/** MariaDB (from `make services`) and earshot's mysql-proxy in front of it, for tests. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import mysql from 'mysql2/promise';

/** Local-development credentials of `make services`' MariaDB. */
export const mysqlTestUrl = new URL(process.env.MYSQL_TEST_URL ?? 'mysql://earshot:earshot-local-dev@127.0.0.1:3307/earshot_test');

export async function mysqlReachable(): Promise<boolean> {
  try {
    const connection = await mysql.createConnection({ uri: mysqlTestUrl.href, connectTimeout: 20_000 });
    await connection.end();
    return true;
  } catch {
    return false;
  }
}

export interface RunningProxy {
  /** `http://user:password@127.0.0.1:port`, what USERS_DB_URL would hold. */
  url: string;
  port: number;
  output: string[];
  close(): Promise<void>;
}

/** Starts mysql-proxy as its own process, in front of the test database. */
export async function startMysqlProxy(env: Record<string, string> = {}): Promise<RunningProxy> {
  const { hostname, port, pathname, username, password } = mysqlTestUrl;
  const child = spawn(process.execPath, ['--import', 'tsx', 'mysql-proxy/main.ts'], {
    env: { PATH: process.env.PATH!, PORT: '0', HOST: '127.0.0.1', MYSQL_URL: `mysql://${hostname}:${port}${pathname}`, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const output: string[] = [];
  const proxyPort = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === 'listening') resolve(entry.port!);
    });
    child.once('exit', (code) => reject(new Error(`mysql-proxy exited with ${code}: ${output.join('\n')}`)));
  });
  return {
    url: `http://${username}:${password}@127.0.0.1:${proxyPort}`,
    port: proxyPort,
    output,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A database of a test's own beside earshot_test (MariaDB grants earshot_test*): its MYSQL_URL for the proxy, and its removal. */
export async function makeTestDatabase(suffix: string): Promise<{ mysqlUrl: string; drop(): Promise<void> }> {
  const name = `earshot_test_${suffix.replace(/\W/g, '_')}`;
  const admin = async (sql: string) => {
    const connection = await mysql.createConnection({ uri: mysqlTestUrl.href, connectTimeout: 20_000 });
    try {
      await connection.query(sql);
    } finally {
      await connection.end();
    }
  };
  await admin(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  const { hostname, port } = mysqlTestUrl;
  return { mysqlUrl: `mysql://${hostname}:${port}/${name}`, drop: () => admin(`DROP DATABASE IF EXISTS \`${name}\``) };
}
