import { Client } from '@sendgrid/client';
import { MailService } from '@sendgrid/mail';
import { MailRejected, MailUnavailable, type Mailer } from './mailer';

export const SENDGRID_API = 'https://api.sendgrid.com';

/** SendGrid's v3 mail/send through `@sendgrid/mail`; `baseUrl` points it elsewhere (a local stand-in in tests). */
export function sendgridMailer({ apiKey, baseUrl = SENDGRID_API, timeoutMs = 10_000 }: { apiKey: string; baseUrl?: string; timeoutMs?: number }): Mailer {
  const client = new Client();
  client.setApiKey(apiKey);
  client.setDefaultRequest('baseUrl', baseUrl);
  const service = new MailService();
  service.setClient(client);
  service.setTimeout(timeoutMs);

  return {
    async send({ to, from, subject, text, jobId }) {
      try {
        await service.send({ to, from, subject, text, customArgs: { jobId } });
      } catch (err) {
        const status = (err as { code?: unknown }).code;
        const detail = describe(err);
        if (typeof status === 'number' && status >= 400 && status < 500 && status !== 429 && status !== 408) {
          throw new MailRejected(`SendGrid refused the message (${status}): ${detail}`);
        }
        throw new MailUnavailable(`SendGrid could not take the message (${status ?? 'no response'}): ${detail}`);
      }
    },
  };
}

function describe(err: unknown): string {
  const errors = (err as { response?: { body?: { errors?: { message?: string }[] } } }).response?.body?.errors;
  return errors?.map((e) => e.message).join('; ') || (err as Error).message;
}
