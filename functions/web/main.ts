import page from './page-module';
import { envReader } from '../../shared/config';
import { runFunction } from '../../shared/serve';
import { createApp } from './app';

await runFunction('web', async (env, log) => {
  const read = envReader(env);
  const endpoint = (name: string) => read.url(name, undefined, ['http:', 'https:']);
  const app = createApp({ page, endpoints: { login: endpoint('LOGIN_URL'), upload: endpoint('UPLOAD_URL'), download: endpoint('DOWNLOAD_URL') }, log });
  return { fetch: app.fetch };
});
