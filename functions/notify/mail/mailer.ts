export interface Email {
  to: string;
  from: string;
  subject: string;
  text: string;
  /** Lets the provider and the outbox tie a message to its job. */
  jobId: string;
}

export interface Mailer {
  /** Resolves once the provider accepted the message. */
  send(email: Email): Promise<void>;
}

/** The provider refused this message for good (bad address, bad sender): retrying cannot help. */
export class MailRejected extends Error {
  override name = 'MailRejected';
}

/** The provider could not take the message now (rate limit, outage, network): retry later. */
export class MailUnavailable extends Error {
  override name = 'MailUnavailable';
}
