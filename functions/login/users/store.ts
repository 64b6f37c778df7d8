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

export interface UserStore {
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
