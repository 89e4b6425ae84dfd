import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {synthesizeSnapshot} from '../../../bench/synth.js'
import {peerEntries} from '../../../src/analyze/checks/facts.js'
import {runChecks, runChecksByNode, runChecksStreamed} from '../../../src/analyze/checks/index.js'
import type {NodeState} from '../../../src/model/node-state.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {openSnapshotFile, writeSnapshotFile} from '../../../src/model/snapshot-file.js'
import {snapshotFixture} from '../../helpers/fixtures.js'

const FIXTURES = readdirSync(path.resolve('fixtures/snapshots'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))

const dir = mkdtempSync(path.join(tmpdir(), 'netctl-streamed-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** check --snapshot's way: the file written as version 2 (a line per node), read twice, node by node */
async function fromFile(s: Snapshot, name: string, nodes?: string[]) {
  const file = path.join(dir, `${name}.jsonl`)
  await writeSnapshotFile(file, s)
  const {head, states} = await openSnapshotFile(file)
  return runChecksStreamed(head, states, nodes ? {nodes} : {})
}

describe('check node by node (cluster facts, one state at a time) finds what the checks over the whole snapshot find', () => {
  for (const name of FIXTURES) {
    it(`${name}: the same findings in the same order, from memory and from a JSON Lines file, whole and scoped to a node`, async () => {
      const s = snapshotFixture(name)
      const whole = runChecks(s)
      expect(runChecksByNode(s).raised.map((r) => r.finding)).toEqual(whole)
      expect((await fromFile(s, name)).raised.map((r) => r.finding)).toEqual(whole)
      const first = s.nodes[0]!.name
      expect(runChecksByNode(s, {nodes: [first]}).raised.map((r) => r.finding)).toEqual(runChecks(s, {nodes: [first]}))
    })
  }

  for (const lab of ['flannel-vxlan-lab', 'flannel-host-gw-lab', 'calico-bgp-lab']) {
    it(`${lab} grown to 50 nodes, with faults on some of them: the same findings`, async () => {
      const s = synthesizeSnapshot(snapshotFixture(lab), 50)
      // a lost FDB entry, a stale route and a removed peer route: per-node checks with their peers' facts
      const n3 = s.nodeStates.node3!
      n3.fdb = n3.fdb.slice(1)
      n3.routes = n3.routes.filter((_, i) => i % 7 !== 3)
      s.nodeStates.node9!.neighbours = s.nodeStates.node9!.neighbours.slice(2)
      const whole = runChecks(s)
      expect(whole.length).toBeGreaterThan(0)
      expect(runChecksByNode(s).raised.map((r) => r.finding)).toEqual(whole)
      expect((await fromFile(s, `${lab}-50`)).raised.map((r) => r.finding)).toEqual(whole)
    })
  }
})

describe('check node by node holds cluster facts that do not grow with the cluster, and one whole state at a time', () => {
  for (const lab of ['flannel-vxlan-lab', 'flannel-host-gw-lab', 'calico-bgp-lab']) {
    it(`${lab} at 16 and 48 nodes: the facts kept per node have the same per-peer entries; each state is visited once`, () => {
      const kept = (n: number): {perNode: number; visits: number; whole: number} => {
        const s = synthesizeSnapshot(snapshotFixture(lab), n)
        const run = runChecksByNode(s)
        const facts = Object.values(run.facts.nodeStates)
        const whole = Object.values(s.nodeStates).reduce((a, st: NodeState) => a + peerEntries(st), 0) / n
        return {perNode: facts.reduce((a, st) => a + peerEntries(st), 0) / facts.length, visits: run.visits, whole}
      }
      const small = kept(16)
      const big = kept(48)
      // a whole state holds entries per peer (at least one more per node added): the facts do not
      expect(big.whole - small.whole).toBeGreaterThanOrEqual(48 - 16)
      expect(big.perNode).toBe(small.perNode)
      expect([small.visits, big.visits]).toEqual([16, 48])
    })
  }

  it('a file is read in two passes, each holding one line (one node) at a time', async () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 20)
    const file = path.join(dir, 'passes.jsonl')
    await writeSnapshotFile(file, s)
    const {head, states} = await openSnapshotFile(file)
    let passes = 0
    let live = 0
    let most = 0
    const counted = async function* () {
      passes++
      for await (const e of states()) {
        live++
        most = Math.max(most, live)
        yield e
        live--
      }
    }
    const run = await runChecksStreamed(head, counted)
    expect(run.raised.map((r) => r.finding)).toEqual(runChecks(s))
    expect({passes, most}).toEqual({passes: 2, most: 1})
  })
})
