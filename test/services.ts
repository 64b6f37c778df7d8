/**
 * Suites that need something outside the repository: a real server (`make services` starts them),
 * Go, or a Node binary from the npm registry. Without it a suite is skipped on a developer's
 * machine, and fails in CI (CI=true), where a skip would hide it. Skipped suites are counted in
 * one line at the end of the run (test/skip-reporter.ts).
 */
import { describe, it } from 'vitest';

/** How a skipped suite's name ends: " [needs <service>: <command that enables it>]". */
export const needsMarker = / \[needs (.+?): (.+)\]$/;

export function describeWithService(service: string, available: boolean, name: string, suite: () => void, enable = 'make services'): void {
  if (available) describe(name, suite);
  else if (process.env.CI) describe(name, () => it(`needs ${service}`, () => { throw new Error(`${service} is not available: ${enable}`); }));
  else describe.skip(`${name} [needs ${service}: ${enable}]`, suite);
}
