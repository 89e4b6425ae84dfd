/** `npm run bench`: every benchmark, one after another (they share two cores), printed as markdown for the README. */
import {spawnSync} from 'node:child_process'
import {cpus} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {benchLabUp} from './lab-up.js'
import {benchStartup} from './startup.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function runChild(args: string[]): void {
  const r = spawnSync(process.execPath, args, {
    cwd: REPO,
    stdio: 'inherit',
    env: {...process.env, NODE_ENV: 'production'},
  })
  if (r.status !== 0) console.log(`\n(${args.join(' ')} exited ${r.status})\n`)
}

console.log(`## Benchmarks (${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores)\n`)
console.log(benchStartup())
console.log()
console.log(await benchLabUp())
runChild(['--import', 'tsx', 'bench/collect.ts'])
runChild(['--import', 'tsx', 'bench/check-scale.ts'])
runChild(['--import', 'tsx', 'bench/policy.ts'])
runChild(['--import', 'tsx', 'bench/trace-netfilter.ts'])
runChild(['--import', 'tsx', 'bench/trace-service.ts'])
runChild(['--import', 'tsx', 'bench/probe.ts'])
runChild(['--import', 'tsx', 'bench/scale.ts'])
console.log('\n### lab bench: the cost of each backend\n')
runChild(['bin/run.js', 'lab', 'bench', '--name', `bench-${process.pid.toString(36)}`])
