import { randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../shared/log';
import type { Mailer } from './mailer';

/** Local development's mail: one JSON file per message in a folder, its path logged. */
export function outboxMailer(dir: string, log: Logger): Mailer {
  return {
    async send(email) {
      await mkdir(dir, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const path = join(dir, `${stamp}-${email.jobId}.json`);
      // Written aside, then renamed into place: whoever reads the outbox never sees half a mail.
      const partial = join(dir, `.partial-${randomUUID()}`);
      await writeFile(partial, `${JSON.stringify({ ...email, sentAt: new Date().toISOString() }, null, 2)}\n`, { flag: 'wx' });
      await rename(partial, path);
      log.info('mail written to outbox', { path, jobId: email.jobId });
    },
  };
}
