#!/usr/bin/env node
import module from 'node:module'

// V8's code for the bundle (scripts/bundle.ts) kept on disk between runs: compiling it is part of
// every start. Node keeps it under os.tmpdir() unless NODE_COMPILE_CACHE says where (and
// NODE_DISABLE_COMPILE_CACHE=1 turns it off); a cache it cannot use is skipped, never an error.
module.enableCompileCache?.()

const argv = process.argv.slice(2)

if (argv.length === 1 && (argv[0] === '--version' || argv[0] === 'version')) {
  // The bare version question is answered before oclif loads (start-up is the cost of
  // every completion and script probe): the version command's own text, from the same
  // modules, with the release oclif would read from package.json.
  const {readFileSync} = await import('node:fs')
  const [{versionInfo}, {versionText}] = await Promise.all([
    import('../dist/src/services/version.js'),
    import('../dist/src/render/version.js'),
  ])
  const {version} = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  process.stdout.write(`${versionText(versionInfo(version))}\n`)
} else {
  // oclif's execute from the bundle (scripts/bundle.ts): one copy of @oclif/core with the commands'
  const {execute} = await import('../dist/src/main.js')
  // `netctl --version` with more after it is `netctl version …` (e.g. --json), which names the snapshot schema too.
  await execute({dir: import.meta.url, args: argv[0] === '--version' ? ['version', ...argv.slice(1)] : argv})
}
