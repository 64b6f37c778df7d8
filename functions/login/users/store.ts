import type { Role } from '../../../shared/auth';

export interface UserRecord {
  id: string;
  email: string;
  passwordHash: string;
  role: Role;
  createdAt: Date;
}

export interface NewUser {
  email: string;
  passwordHash: string;
  role: Role;
}

/** Failed logins under one key (an account or a client address), as every pod sees them. */
export interface FailureCount {
  key: string;
  failures: number;
  /** Milliseconds since the epoch. */
  lastFailedAt: number;
}

/**
 * Failed logins, kept with the users so that every pod, and a pod started from zero, sees the
 * same counts. Keys are opaque (at most 64 characters); the policy lives in ../throttle.ts.
 */
export interface LoginFailures {
  /** The counts of those keys that have any. */
  failures(keys: string[]): Promise<FailureCount[]>;
  /** One more failure, atomically; a count last touched before `forgetBefore` starts again from 1. */
  recordFailure(key: string, at: number, forgetBefore: number): Promise<void>;
  clearFailures(key: string): Promise<void>;
  /** Drops the counts last touched before `before`. */
  forgetFailures(before: number): Promise<void>;
}

export interface UserStore extends LoginFailures {
  /** Throws `DuplicateEmail` if the (normalized) email is taken. */
  create(user: NewUser): Promise<UserRecord>;
  findByEmail(email: string): Promise<UserRecord | null>;
  count(): Promise<number>;
  close(): Promise<void>;
}

export class DuplicateEmail extends Error {
  constructor(email: string) {
    super(`a user with email ${email} already exists`);
    this.name = 'DuplicateEmail';
  }
}

/** Emails are matched case-insensitively, in one Unicode form. */
export const normalizeEmail = (email: string): string => email.trim().normalize('NFC').toLowerCase();
