/**
 * Start-up: `netctl --version` against a bare `node -e 0`, the two taking turns
 * in the same run so that load from elsewhere falls on both; medians and their
 * ratio (target: at most 3x). Runs the built CLI with its oclif manifest, as
 * `npm run build` leaves it and as the package installs it. For reference, the
 * same answer through oclif (`version -o text`: bin/run.js answers only the bare
 * question before loading oclif) and a command that loads a snapshot.
 */
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import path from 'node:path'
import {performance} from 'node:perf_hooks'
import {fileURLToPath} from 'node:url'

import {markdownTable, median} from './util.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function wall(args: string[]): number {
  const t0 = performance.now()
  const r = spawnSync(process.execPath, args, {
    cwd: REPO,
    stdio: 'ignore',
    env: {...process.env, NODE_ENV: 'production'},
  })
  const ms = performance.now() - t0
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}`)
  return ms
}

export function benchStartup(runs = 21): string {
  if (!existsSync(path.join(REPO, 'oclif.manifest.json')))
    throw new Error('no oclif.manifest.json: run npm run build first')
  const floor: number[] = []
  const version: number[] = []
  const viaOclif: number[] = []
  const explain: number[] = []
  const explainArgs = ['bin/run.js', 'explain', 'FDB_MISSING']
  for (const args of [['bin/run.js', '--version'], ['bin/run.js', 'version', '-o', 'text'], explainArgs]) wall(args) // warm the file cache once for all
  for (let i = 0; i < runs; i++) {
    floor.push(wall(['-e', '0']))
    version.push(wall(['bin/run.js', '--version']))
    viaOclif.push(wall(['bin/run.js', 'version', '-o', 'text']))
    explain.push(wall(explainArgs))
  }
  const f = median(floor)
  const v = median(version)
  const ratio = v / f
  const ref = (ms: number[]): [string, string] => [median(ms).toFixed(1), `${(median(ms) / f).toFixed(2)}x`]
  return [
    `### start-up (Node ${process.version}, median of ${runs}, taking turns)`,
    '',
    markdownTable(
      ['what', 'median ms', 'ratio', 'target'],
      [
        ['`node -e 0` (floor)', f.toFixed(1), '1.00x', ''],
        ['`netctl --version`', v.toFixed(1), `${ratio.toFixed(2)}x`, `<= 3x: ${ratio <= 3 ? 'met' : 'not met'}`],
        ['`netctl version -o text` (the same text through oclif)', ...ref(viaOclif), '(reference)'],
        ["`netctl explain FDB_MISSING` (a command of netctl's own)", ...ref(explain), '(reference)'],
      ],
    ),
  ].join('\n')
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`)
  console.log(benchStartup(Number(process.env.RUNS ?? 21)))
