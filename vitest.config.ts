import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // oclif writes through process.stdout; vitest would otherwise swallow it.
    disableConsoleIntercept: true,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    pool: 'forks',
    // Lab tests build real namespaces and mostly wait (pings, daemons, timeouts): on two cores a
    // third file in flight uses the time they leave idle.
    maxWorkers: 3,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
})
