import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuplicateEmail, type UserStore } from './store';

/** One suite every users adapter must pass. */
export function userStoreContract(name: string, open: () => Promise<UserStore>): void {
  describe(`users: ${name}`, () => {
    let users: UserStore;
    beforeAll(async () => {
      users = await open();
    });
    afterAll(() => users?.close());
    const unique = () => `u${Date.now()}${Math.random().toString(36).slice(2, 8)}`;

    it('creates a user and finds it by email, case-insensitively', async () => {
      const email = `${unique()}@Example.com`;
      const created = await users.create({ email, passwordHash: 'scrypt$hash', role: 'user' });
      expect(created.email).toBe(email.toLowerCase());
      const found = await users.findByEmail(email.toUpperCase());
      expect(found).toMatchObject({ id: created.id, email: email.toLowerCase(), passwordHash: 'scrypt$hash', role: 'user' });
      expect(found!.createdAt).toBeInstanceOf(Date);
    });

    it('refuses a duplicate email with a clear error', async () => {
      const email = `${unique()}@example.com`;
      await users.create({ email, passwordHash: 'h1', role: 'user' });
      await expect(users.create({ email: ` ${email.toUpperCase()} `, passwordHash: 'h2', role: 'admin' })).rejects.toThrow(DuplicateEmail);
      expect((await users.findByEmail(email))!.passwordHash).toBe('h1');
    });

    it('keeps the role', async () => {
      const email = `${unique()}@example.com`;
      await users.create({ email, passwordHash: 'h', role: 'admin' });
      expect((await users.findByEmail(email))!.role).toBe('admin');
    });

    it('counts its users', async () => {
      const before = await users.count();
      await users.create({ email: `${unique()}@example.com`, passwordHash: 'h', role: 'user' });
      expect(await users.count()).toBe(before + 1);
    });

    it('answers null for an unknown user', async () => {
      expect(await users.findByEmail(`${unique()}@nowhere.example`)).toBeNull();
    });

    it('stores Unicode emails in one normal form', async () => {
      const local = unique();
      await users.create({ email: `${local}.jos\u00e9@b\u00fccher.example`, passwordHash: 'h', role: 'user' });
      expect(await users.findByEmail(`${local}.jose\u0301@bu\u0308cher.example`)).not.toBeNull();
    });

    it('treats SQL metacharacters as data', async () => {
      const email = `${unique()}'; DROP TABLE users; --"@x.example`;
      await users.create({ email, passwordHash: `'); --`, role: 'user' });
      expect((await users.findByEmail(email))!.passwordHash).toBe(`'); --`);
      expect(await users.findByEmail(`' OR '1'='1`)).toBeNull();
    });
  });
}
