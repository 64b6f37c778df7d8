/** Ends a run with one line saying how many suites were skipped for a missing service, and how to run them. */
import type { Reporter, TestModule } from 'vitest/node';
import { needsMarker } from './services';

export default class SkipReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const byCommand = new Map<string, Set<string>>();
    let count = 0;
    for (const module of modules) {
      for (const suite of module.children.allSuites()) {
        const match = needsMarker.exec(suite.name);
        if (!match) continue;
        count++;
        const [, service, enable] = match as unknown as [string, string, string];
        byCommand.set(enable, (byCommand.get(enable) ?? new Set()).add(service));
      }
    }
    if (count === 0) return;
    const how = [...byCommand].map(([enable, services]) => `${enable} (${[...services].join(', ')})`).join('; ');
    console.log(`\n${count} suite${count === 1 ? '' : 's'} skipped for what this machine lacks; to run them: ${how}`);
  }
}
