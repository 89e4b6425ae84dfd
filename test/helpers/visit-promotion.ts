/**
 * Run by test/analyze/checks/young-states.test.ts in a process of its own (node --expose-gc
 * --import tsx): a flannel vxlan cluster of N nodes grown from the lab (bench/synth.ts), written
 * as collect writes it, then checked as `check --snapshot` checks it in one thread (the facts
 * kept, each state visited once and dropped). Prints, as JSON, the bytes of the state lines and
 * how much V8's old generation grew while they were visited: its growth from one visit to the
 * next, added up (a full collection in between frees what was promoted, but not what was copied).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import v8 from 'node:v8'

import {synthesize, writeSynthetic} from '../../bench/synth.js'
import {ChecksByNode} from '../../src/analyze/checks/index.js'
import {openSnapshotFile} from '../../src/model/snapshot-file.js'
import {snapshotFixture} from './fixtures.js'

const oldGeneration = (): number =>
  v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size

const nodes = Number(process.argv[2])
const dir = mkdtempSync(path.join(tmpdir(), 'netctl-visit-'))
try {
  const file = path.join(dir, 'cluster.jsonl')
  await writeSynthetic(synthesize(snapshotFixture('flannel-vxlan-lab'), nodes, {}), file)
  const {head, indexed} = await openSnapshotFile(file)
  if (!indexed) throw new Error('no index')
  const checked = async (): Promise<number> => {
    const run = new ChecksByNode(head, {})
    for await (const {node, state} of indexed.facts()) run.addFacts(node, state, true)
    run.start()
    globalThis.gc!()
    let grown = 0
    let last = oldGeneration()
    for await (const {node, state} of indexed.statesAt(0, indexed.nodes.length)) {
      run.visit(node, state)
      const now = oldGeneration()
      grown += Math.max(0, now - last)
      last = now
    }
    return grown
  }
  // the first run compiles and warms the code (its compiled code and feedback live in the old generation too)
  await checked()
  const grown = await checked()
  const stateBytes = indexed.nodes.reduce((a, l) => a + l[2], 0)
  process.stdout.write(JSON.stringify({nodes, stateBytes, grown}))
} finally {
  rmSync(dir, {recursive: true, force: true})
}
