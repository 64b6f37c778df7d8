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

    describe('login failures', () => {
      const minute = 60_000;
      // Far ahead of the clock, so that a login suite pruning the shared MariaDB table
      // (everything quiet for a day) never removes a count this suite is looking at.
      const t0 = 4_000_000_000_000;
      const count = async (key: string) => (await users.failures([key]))[0];

      it('counts failures per key and knows nothing of keys that never failed', async () => {
        const [a, b] = [unique(), unique()];
        await users.recordFailure(a, t0, t0 - minute);
        await users.recordFailure(a, t0 + 1000, t0 - minute);
        await users.recordFailure(b, t0 + 500, t0 - minute);
        const counts = await users.failures([a, b, unique()]);
        expect(counts.sort((x, y) => x.failures - y.failures)).toEqual([
          { key: b, failures: 1, lastFailedAt: t0 + 500 },
          { key: a, failures: 2, lastFailedAt: t0 + 1000 },
        ]);
        expect(await users.failures([])).toEqual([]);
      });

      it('loses no failure when many are recorded at once', async () => {
        const key = unique();
        await Promise.all(Array.from({ length: 20 }, (_, i) => users.recordFailure(key, t0 + i, t0 - minute)));
        expect(await count(key)).toEqual({ key, failures: 20, lastFailedAt: t0 + 19 });
      });

      it('starts again from one after a quiet spell, and never moves the last failure back', async () => {
        const key = unique();
        await users.recordFailure(key, t0, t0 - minute);
        await users.recordFailure(key, t0 + 1, t0 - minute);
        await users.recordFailure(key, t0 + 10 * minute, t0 + 5 * minute);
        expect(await count(key)).toEqual({ key, failures: 1, lastFailedAt: t0 + 10 * minute });
        await users.recordFailure(key, t0, t0 - minute);
        expect(await count(key)).toEqual({ key, failures: 2, lastFailedAt: t0 + 10 * minute });
      });

      it('clears one key, and forgets the keys quiet since a given time', async () => {
        const [cleared, kept, old] = [unique(), unique(), unique()];
        for (const key of [cleared, kept]) await users.recordFailure(key, t0, t0 - minute);
        // Only this suite's rows are older than 1970 plus a second: forgetting never reaches another suite's.
        await users.recordFailure(old, 500, 0);
        await users.clearFailures(cleared);
        await users.forgetFailures(1000);
        expect((await users.failures([cleared, kept, old])).map((c) => c.key)).toEqual([kept]);
      });

      it('takes keys of 64 characters and treats SQL metacharacters in them as data', async () => {
        const long = `${unique()}${'f'.repeat(64)}`.slice(0, 64);
        const tricky = `${unique()}' OR '1'='1`;
        await users.recordFailure(long, t0, t0 - minute);
        await users.recordFailure(tricky, t0, t0 - minute);
        expect((await users.failures([long, tricky])).map((c) => c.key).sort()).toEqual([long, tricky].sort());
        expect(await users.failures([`' OR '1'='1`])).toEqual([]);
      });
    });
  });
}
