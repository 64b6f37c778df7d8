import { ConfigError, envReader } from '../shared/config';
import { runFunction } from '../shared/serve';
import { createApp } from './app';
import { SessionManager } from './sessions';

await runFunction('mysql-proxy', async (env, log) => {
  const read = envReader(env);
  // Where MySQL is; the user and password come with each request (HTTP Basic), as with PlanetScale.
  const mysqlUrl = read.url('MYSQL_URL', 'mysql://127.0.0.1:3306/earshot', ['mysql:']);
  const database = mysqlUrl.pathname.replace(/^\//, '');
  if (!database) throw new ConfigError('MYSQL_URL', 'must name the database: mysql://host:port/database');
  const idleMs = read.int('SESSION_IDLE_SECONDS', 60, { min: 1 }) * 1000;
  const sessions = new SessionManager({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306), database }, idleMs);

  const app = createApp(sessions, log);
  return { fetch: app.fetch, close: () => sessions.close() };
});
