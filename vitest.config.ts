import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['functions/**/*.test.ts', 'shared/**/*.test.ts', 'local/**/*.test.ts', 'mysql-proxy/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Generous: a test must pass on a loaded machine (no test depends on speed).
    testTimeout: 180_000,
    hookTimeout: 300_000,
    // Two cores: ffmpeg-heavy suites must not all run at once.
    maxWorkers: 2,
    env: { LOG_LEVEL: 'silent' },
    // .ci/run reads the totals from here.
    reporters: ['default', ['json', { outputFile: 'node_modules/.vitest/results.json' }], './test/skip-reporter.ts'],
  },
});
