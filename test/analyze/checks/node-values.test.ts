import {readdirSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it, vi} from 'vitest'

import {synthesizeSnapshot} from '../../../bench/synth.js'
import {factsFor, NodeValues, runChecksWithFacts} from '../../../src/analyze/checks/index.js'
import type {NodeState} from '../../../src/model/node-state.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {snapshotFixture} from '../../helpers/fixtures.js'

const FIXTURES = readdirSync(path.resolve('fixtures/snapshots'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))

/** what trace's checks see: the head, every node's facts, the whole states of the path's nodes */
function split(s: Snapshot) {
  const head: Snapshot = {...s, nodeStates: {}}
  const toFacts = factsFor(s)
  const facts: Record<string, NodeState> = {}
  for (const [node, state] of Object.entries(s.nodeStates)) facts[node] = toFacts(state)
  const checks = (nodes: string[], values?: NodeValues) =>
    runChecksWithFacts(
      head,
      facts,
      nodes.flatMap((node) => (s.nodeStates[node] ? [{node, state: s.nodeStates[node]}] : [])),
      {nodes, ...(values ? {values} : {})},
    ).raised.map((r) => r.finding)
  return {checks}
}

describe("the per-node values kept from one run of a path's checks to the next over the same head and facts (trace's kept file)", () => {
  for (const name of FIXTURES) {
    it(`${name}: runs over every node, then every pair, sharing one NodeValues, find what runs of their own find`, () => {
      const s = snapshotFixture(name)
      const {checks} = split(s)
      const names = s.nodes.map((n) => n.name)
      const values = new NodeValues()
      // each node alone first (its values worked out while it is visited), then pairs, each way
      const paths = [...names.map((n) => [n]), ...names.flatMap((a) => names.filter((b) => b !== a).map((b) => [a, b]))]
      for (const nodes of paths) expect(checks(nodes, values), nodes.join(' ')).toEqual(checks(nodes))
    })
  }

  it('a 40-node cluster with faults: a second path works out no node value again, and finds what a fresh run finds', () => {
    const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), 40)
    const ip17 = s.nodes.find((n) => n.name === 'node17')!.internalIP
    s.nodeStates.node3!.fdb = s.nodeStates.node3!.fdb.filter((f) => f.dst !== ip17)
    s.nodes.find((n) => n.name === 'node25')!.podCIDRs = [...s.nodes.find((n) => n.name === 'node9')!.podCIDRs]
    const {checks} = split(s)
    const values = new NodeValues()
    expect(checks(['node3', 'node17'], values)).toEqual(checks(['node3', 'node17']))
    expect(values.vtep.size).toBe(40)
    expect(values.underlayIP.size).toBe(40)
    // nothing proportional to the cluster's nodes is worked out again: only the path's own per-peer checks run
    const sets = [values.ipOwner, values.byName, values.underlayIP, values.podNets, values.vtep, values.memos].map(
      (m) => vi.spyOn(m, 'set'),
    )
    const second = checks(['node9', 'node30'], values)
    for (const set of sets) expect(set).not.toHaveBeenCalled()
    expect(second).toEqual(checks(['node9', 'node30']))
    expect(second.map((f) => f.code)).toContain('PODCIDR_DUPLICATE')
    const third = checks(['node3', 'node5'], values)
    expect(third).toEqual(checks(['node3', 'node5']))
    expect(third.map((f) => f.code)).toContain('FDB_MISSING')
  })
})
