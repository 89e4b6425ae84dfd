/**
 * What `--probe` costs, on a 3-node flannel-vxlan lab, whole CLI processes as a
 * user runs them: `trace --probe` against `trace` for the same pair, taking
 * turns in the same run (a ratio, target ≤ 1.5×: the probe adds a counter read
 * on the other nodes, one exec on the source node and `ping -c 3 -i 0.2`), and
 * `check --probe` against `check`, the difference per node pair probed.
 * BENCH_PROBE_RUNS runs each (default 5); the lab is torn down also on failure.
 */
import {run} from '../src/util/exec.js'
import {fmtMs, markdownTable, median, requireRoot, timeIt} from './util.js'

const BIN = new URL('../bin/run.js', import.meta.url).pathname
const RUNS = Number(process.env.BENCH_PROBE_RUNS ?? 5)
const NODES = 3
const TARGET = 1.5

/** exit 0 expected (the lab is healthy: every pair delivered and carried). */
async function netctl(args: string[]): Promise<void> {
  const r = await run(process.execPath, [BIN, ...args], {
    env: {...process.env, NODE_ENV: 'production'},
    timeoutMs: 300_000,
  })
  if (r.code !== 0) throw new Error(`netctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`)
}

/** Both commands RUNS times, taking turns (the machine's load moves the same for both); the medians. */
async function turns(a: string[], b: string[]): Promise<[number, number]> {
  const xs: number[] = []
  const ys: number[] = []
  for (let i = 0; i < RUNS; i++) {
    xs.push(await timeIt(() => netctl(a)))
    ys.push(await timeIt(() => netctl(b)))
  }
  return [median(xs), median(ys)]
}

export async function benchProbe(): Promise<string> {
  if (!requireRoot('probe benchmark')) return ''
  // NETCTL_TEST_LAB_PREFIX: a developer's own lab prefix on a shared machine
  const lab = `${process.env.NETCTL_TEST_LAB_PREFIX ?? ''}bprobe-${process.pid.toString(36)}`
  await netctl(['lab', 'up', '--name', lab, '--nodes', String(NODES), '--pods-per-node', '1', '--json'])
  try {
    const trace = ['trace', 'pod-node1-1', 'pod-node3-1', '--lab', lab, '--json']
    const [walk, probed] = await turns(trace, [...trace, '--probe'])
    const check = ['check', '--lab', lab, '--json']
    const [checked, checkProbed] = await turns(check, [...check, '--probe'])
    const pairs = NODES * (NODES - 1)
    const ratio = probed / walk
    return [
      `### \`--probe\` (\`bench/probe.ts\`; ${NODES}-node flannel-vxlan lab, whole CLI processes taking turns, median of ${RUNS})`,
      '',
      markdownTable(
        ['command', 'median', 'ratio', 'target'],
        [
          ['`netctl trace pod-node1-1 pod-node3-1 --lab … --json`', fmtMs(walk), '1.00×', ''],
          [
            '`netctl trace pod-node1-1 pod-node3-1 --lab … --probe --json`',
            fmtMs(probed),
            `${ratio.toFixed(2)}×`,
            `≤ ${TARGET}×: ${ratio <= TARGET ? 'met' : 'NOT met'}`,
          ],
          ['`netctl check --lab … --json`', fmtMs(checked), '1.00×', ''],
          [
            `\`netctl check --lab … --probe --json\` (${pairs} pairs)`,
            fmtMs(checkProbed),
            `${(checkProbed / checked).toFixed(2)}×`,
            `${fmtMs((checkProbed - checked) / pairs)} per pair`,
          ],
        ],
      ),
      '',
    ].join('\n')
  } finally {
    await run(process.execPath, [BIN, 'lab', 'down', '--name', lab], {env: {...process.env, NODE_ENV: 'production'}})
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchProbe())
}
