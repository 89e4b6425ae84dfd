/**
 * Record `trace --probe` on a lab for fixtures/trace-probe/: the walk, then every node's
 * raw output as the probe service reads it (the same scripts, through the lab's netns
 * transport), one file per exec:
 *   node --import tsx scripts/capture-trace-probe.ts LAB SRC DST DIR [SIZE [df]]
 * writes DIR/walk.json (the trace without its probe), DIR/<node>-source.out (the source
 * node's read, send and read), DIR/<node>-before.out and DIR/<node>-after.out (the other
 * nodes' reads), DIR/<node>-smaller.out (the small ping after a lost big one).
 */
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {loadInventory} from '../src/cluster/inventory.js'
import {labInventoryFile} from '../src/lab/inventory.js'
import type {InventoryNode} from '../src/model/inventory.js'
import {probeTrace} from '../src/services/probe.js'
import {traceLive} from '../src/services/trace.js'
import {NetnsTransport} from '../src/transport/netns.js'
import type {Transport} from '../src/transport/types.js'

const [lab, src, dst, dir, size = '84', df] = process.argv.slice(2)
if (!lab || !src || !dst || !dir) {
  process.stderr.write('usage: capture-trace-probe.ts LAB SRC DST DIR [SIZE [df]]\n')
  process.exit(2)
}
const inv = await loadInventory(await labInventoryFile(lab))
const netnsOf = (n: InventoryNode) => new NetnsTransport(n.access.netns!)
const run = await traceLive(
  inv,
  {src, dst, protocol: 'icmp', size: Number(size), df: df === 'df'},
  {version: 'capture', parallel: 4, timeoutMs: 30_000, transportFactory: netnsOf},
)
await mkdir(dir, {recursive: true})
await writeFile(path.join(dir, 'walk.json'), `${JSON.stringify(run.trace, null, 1)}\n`)
const reads = new Map<string, number>()
const recording = (n: InventoryNode): Transport => {
  const t = netnsOf(n)
  return {
    target: t.target,
    close: () => t.close(),
    async exec(script, opts) {
      const r = await t.exec(script, opts)
      const kind = script.includes('netctl-probe send')
        ? 'source'
        : script.includes('ping')
          ? 'smaller'
          : (reads.get(n.name) ?? 0) === 0
            ? 'before'
            : 'after'
      if (kind === 'before' || kind === 'after') reads.set(n.name, (reads.get(n.name) ?? 0) + 1)
      await writeFile(path.join(dir, `${n.name}-${kind}.out`), r.stdout)
      return r
    },
  }
}
const probed = await probeTrace(run.trace, run.snapshot, inv.nodes, {
  transportFor: recording,
  timeoutMs: 30_000,
  version: 'capture',
})
process.stderr.write(
  `# ${src} → ${dst}: walk ${run.trace.disposition}, probe ${probed.probe?.verdict}: ${probed.probe?.note}\n`,
)
