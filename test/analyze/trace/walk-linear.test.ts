import {describe, expect, it} from 'vitest'

import {synthesizeSnapshot} from '../../../bench/synth.js'
import {traceSnapshot} from '../../../src/analyze/trace/index.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {snapshotFixture} from '../../helpers/fixtures.js'

/**
 * A cluster grown from the flannel vxlan lab with only the two endpoint nodes collected (what a
 * live trace reads), whose Node objects count each read of their addresses: the walk asks which
 * node an address belongs to several times per trace (the VTEP's outer destination, the underlay's
 * next hop, the return path), and each question must not scan the cluster again.
 */
function counted(n: number): {s: Snapshot; reads: () => number} {
  const s = synthesizeSnapshot(snapshotFixture('flannel-vxlan-lab'), n, {collected: new Set(['node1', `node${n}`])})
  let reads = 0
  s.nodes = s.nodes.map((node) => {
    const {internalIP, externalIP, ...rest} = node
    const counting = {...rest} as typeof node
    Object.defineProperty(counting, 'internalIP', {
      enumerable: true,
      get: () => (reads++, internalIP),
    })
    if (externalIP !== undefined)
      Object.defineProperty(counting, 'externalIP', {enumerable: true, get: () => (reads++, externalIP)})
    return counting
  })
  return {s, reads: () => reads}
}

describe("the walk reads each node's addresses a bounded number of times, however many nodes", () => {
  it('a pod-to-pod trace across 100 and 1,000 nodes: address reads per node stay under one and a half', () => {
    for (const n of [100, 1000]) {
      const {s, reads} = counted(n)
      const r = traceSnapshot(s, {src: 'pod-node1-1', dst: `pod-node${n}-1`, protocol: 'icmp', size: 84, df: false})
      // the packet really crosses the cluster: the two nodes' vxlan path, delivered
      expect(r.trace.disposition).toBe('DELIVERED')
      expect(r.trace.hops.some((h) => h.node === `node${n}`)).toBe(true)
      // once per node, to index them (the walk that scanned the nodes for each question read two per node here)
      expect(reads() / n).toBeLessThan(1.5)
    }
  })
})
