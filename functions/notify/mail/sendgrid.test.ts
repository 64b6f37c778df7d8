import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSendgridStandin, type SendgridStandin } from '../../../test/sendgrid-standin';
import { MailRejected, MailUnavailable, type Email } from './mailer';
import { sendgridMailer } from './sendgrid';

const email: Email = { to: 'alice@example.com', from: 'earshot <no-reply@earshot.example>', subject: 'Your MP3 is ready', text: 'Download it here.', jobId: 'job-1' };

describe('SendGrid mailer (against a local server speaking SendGrid v3 mail/send)', () => {
  let sendgrid: SendgridStandin;
  beforeAll(async () => {
    sendgrid = await startSendgridStandin('SG.test-key-local-only');
  });
  afterAll(() => sendgrid.close());

  const mailer = () => sendgridMailer({ apiKey: 'SG.test-key-local-only', baseUrl: sendgrid.url });

  it('posts the message with the API key as a Bearer token; 202 is success', async () => {
    await mailer().send(email);
    expect(sendgrid.received.at(-1)).toEqual({
      authorization: 'Bearer SG.test-key-local-only',
      body: expect.objectContaining({
        personalizations: [expect.objectContaining({ to: [{ email: 'alice@example.com' }] })],
        from: { email: 'no-reply@earshot.example', name: 'earshot' },
        subject: 'Your MP3 is ready',
        content: [{ type: 'text/plain', value: 'Download it here.' }],
        custom_args: { jobId: 'job-1' },
      }),
      status: 202,
    });
  });

  it('classifies 400 as rejected for good', async () => {
    sendgrid.script.push(400);
    const error = await mailer().send(email).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MailRejected);
    expect((error as Error).message).toMatch(/400.*from email/);
  });

  it('classifies a wrong API key (401) as rejected', async () => {
    await expect(sendgridMailer({ apiKey: 'SG.wrong', baseUrl: sendgrid.url }).send(email)).rejects.toBeInstanceOf(MailRejected);
  });

  it.each([429, 500, 503])('classifies %i as unavailable (to be retried)', async (status) => {
    sendgrid.script.push(status);
    await expect(mailer().send(email)).rejects.toBeInstanceOf(MailUnavailable);
  });

  it('classifies an unreachable server as unavailable', async () => {
    await expect(sendgridMailer({ apiKey: 'SG.x', baseUrl: 'http://127.0.0.1:1' }).send(email)).rejects.toBeInstanceOf(MailUnavailable);
  });
});
