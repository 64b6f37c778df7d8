import { createHash } from 'node:crypto';
import { normalizeEmail, type LoginFailures } from './users/store';

/**
 * Failed logins are counted per account (email, whether or not such a user exists, so that
 * a 429 says nothing about existence) and per client address. Past its free failures a key
 * is locked after each further failure for `firstLockSeconds`, doubling per failure up to
 * `maxLockSeconds`; a key without a failure for `forgetAfterSeconds` starts again from zero.
 */
export interface ThrottlePolicy {
  accountFreeFailures: number;
  /** Higher than the account's: people behind one NAT share an address. */
  addressFreeFailures: number;
  firstLockSeconds: number;
  maxLockSeconds: number;
  forgetAfterSeconds: number;
}

export const defaultThrottlePolicy: ThrottlePolicy = {
  accountFreeFailures: 5,
  addressFreeFailures: 20,
  firstLockSeconds: 1,
  maxLockSeconds: 900,
  forgetAfterSeconds: 24 * 3600,
};

/** How long a key stays locked after its last failure, given how many it has. */
export function lockMs(failures: number, freeFailures: number, policy: ThrottlePolicy): number {
  if (failures < freeFailures) return 0;
  const doublings = Math.min(failures - freeFailures, 40);
  return Math.min(policy.maxLockSeconds, policy.firstLockSeconds * 2 ** doublings) * 1000;
}

export interface LoginThrottle {
  /** Whole seconds until this email may be tried from this address; 0 when it may be now. */
  retryAfter(email: string, address: string): Promise<number>;
  failed(email: string, address: string): Promise<void>;
  /** Resets the account only: an attacker's own account must not wash their address clean. */
  succeeded(email: string): Promise<void>;
}

const pruneEveryMs = 3600_000;

export function loginThrottle(store: LoginFailures, policy: ThrottlePolicy, now: () => number = Date.now): LoginThrottle {
  // Hashed: fixed-size keys whatever the client sends, and no addresses or unknown emails stored in clear.
  const key = (kind: string, value: string) => createHash('sha256').update(`${kind}\0${value}`).digest('hex');
  const accountKey = (email: string) => key('account', normalizeEmail(email));
  const addressKey = (address: string) => key('address', address);
  const forgetMs = policy.forgetAfterSeconds * 1000;
  let prunedAt = -Infinity;

  return {
    async retryAfter(email, address) {
      const account = accountKey(email);
      const free = (k: string) => (k === account ? policy.accountFreeFailures : policy.addressFreeFailures);
      const at = now();
      let waitMs = 0;
      for (const count of await store.failures([account, addressKey(address)])) {
        if (count.lastFailedAt < at - forgetMs) continue; // forgotten, as recordFailure would
        waitMs = Math.max(waitMs, count.lastFailedAt + lockMs(count.failures, free(count.key), policy) - at);
      }
      return Math.ceil(waitMs / 1000);
    },

    async failed(email, address) {
      const at = now();
      if (at - prunedAt >= pruneEveryMs) {
        prunedAt = at;
        await store.forgetFailures(at - forgetMs);
      }
      await Promise.all([store.recordFailure(accountKey(email), at, at - forgetMs), store.recordFailure(addressKey(address), at, at - forgetMs)]);
    },

    async succeeded(email) {
      await store.clearFailures(accountKey(email));
    },
  };
}
