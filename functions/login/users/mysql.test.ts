import { afterAll, beforeAll } from 'vitest';
import { mysqlReachable, startMysqlProxy, type RunningProxy } from '../../../test/mysql';
import { describeWithService } from '../../../test/services';
import { userStoreContract } from './contract';
import { MysqlUserStore } from './mysql';

const available = await mysqlReachable();

describeWithService('MariaDB', available, 'users in MariaDB through mysql-proxy', () => {
  let proxy: RunningProxy;
  beforeAll(async () => {
    proxy = await startMysqlProxy();
  });
  afterAll(() => proxy?.close());

  userStoreContract('MariaDB via @planetscale/database and mysql-proxy', async () => {
    const users = new MysqlUserStore(proxy.url);
    await users.migrate();
    return users;
  });
});
