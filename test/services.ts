/**
 * Suites that need a real server (`make services` starts them). Without the server a suite is
 * skipped on a developer's machine, and fails in CI (CI=true), where a skip would hide it.
 */
import { describe, it } from 'vitest';

export function describeWithService(service: string, available: boolean, name: string, suite: () => void): void {
  const why = `${service} is not reachable: run make services`;
  if (available) describe(name, suite);
  else if (process.env.CI) describe(name, () => it(`needs ${service}`, () => { throw new Error(why); }));
  else describe.skip(`${name} (${why})`, suite);
}
