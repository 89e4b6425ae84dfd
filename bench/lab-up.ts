/**
 * How long `netctl lab up` takes for 3 and for 50 flannel-vxlan nodes, against a
 * floor measured in the same run: creating and deleting the same number of bare
 * namespaces with `ip netns add/delete` (what any lab must at least do).
 */
import {mapLimit, run} from '../src/util/exec.js'
import {fmtMs, markdownTable, median, requireRoot, timeIt} from './util.js'

const BIN = new URL('../bin/run.js', import.meta.url).pathname

async function netctl(args: string[]): Promise<void> {
  const r = await run(process.execPath, [BIN, ...args], {env: {...process.env, NODE_ENV: 'production'}})
  if (r.code !== 0) throw new Error(`netctl ${args.join(' ')}: ${r.stderr}`)
}

async function bareNamespaces(prefix: string, count: number): Promise<number> {
  const names = Array.from({length: count}, (_, i) => `${prefix}.ns${i}`)
  const t = await timeIt(() => mapLimit(names, 8, (n) => run('ip', ['netns', 'add', n])))
  await mapLimit(names, 8, (n) => run('ip', ['netns', 'delete', n]))
  return t
}

export async function benchLabUp(runs = 3): Promise<string> {
  if (!requireRoot('lab up benchmark')) return ''
  const rows: string[][] = []
  for (const nodes of [3, 50]) {
    const namespaces = 1 + nodes * 3 // fabric, nodes, 2 pods per node
    const up: number[] = []
    const down: number[] = []
    const floor: number[] = []
    for (let i = 0; i < runs; i++) {
      const name = `bench-${process.pid.toString(36)}-${nodes}-${i}`
      floor.push(await bareNamespaces(`${name}-floor`, namespaces))
      up.push(await timeIt(() => netctl(['lab', 'up', '--name', name, '--nodes', String(nodes), '--json'])))
      down.push(await timeIt(() => netctl(['lab', 'down', '--name', name])))
    }
    rows.push([
      String(nodes),
      String(namespaces),
      fmtMs(median(up)),
      fmtMs(median(down)),
      fmtMs(median(floor)),
      `${(median(up) / median(floor)).toFixed(1)}×`,
    ])
  }
  return `### lab up (flannel-vxlan, 2 pods per node, median of ${runs})\n\n${markdownTable(['nodes', 'namespaces', 'lab up', 'lab down', 'floor: bare ip netns add', 'up / floor'], rows)}\n`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchLabUp())
}
