import {describe, expect, it} from 'vitest'

import {tracePairs} from '../../src/backend/act/verify.js'
import {snapshotFixture} from '../helpers/fixtures.js'

describe('verifying a switch with netctl trace', () => {
  for (const backend of [
    'flannel-vxlan-lab',
    'flannel-host-gw-lab',
    'flannel-udp-lab',
    'calico-bgp-lab',
    'calico-vxlan-lab',
  ]) {
    it(`traces one pod pair per ordered node pair of a healthy ${backend}: all delivered both ways`, () => {
      const s = snapshotFixture(backend)
      const nodesWithPods = new Set(s.pods.map((p) => p.node)).size
      const r = tracePairs(s)
      expect(r.pairs).toBe(nodesWithPods * (nodesWithPods - 1))
      expect(r.failed).toEqual([])
      expect(r.delivered).toBe(r.pairs)
    })
  }

  it('names the pairs a half-applied switch breaks (node1 lost its route to node3)', () => {
    const s = snapshotFixture('flannel-vxlan-lab')
    const node3 = s.nodes.find((n) => n.name === 'node3')!
    s.nodeStates.node1!.routes = s.nodeStates.node1!.routes.filter((r) => r.dst !== node3.podCIDRs[0])
    const r = tracePairs(s)
    const from1to3 = r.failed.find((f) => f.from.endsWith('node1-1') && f.to.endsWith('node3-1'))
    expect(from1to3, JSON.stringify(r.failed)).toBeDefined()
    expect(from1to3!.disposition).not.toBe('DELIVERED')
    // the reply from node3 to node1 still has its route, but the request from node3 gets no reply
    expect(r.failed.some((f) => f.from.endsWith('node3-1') && f.to.endsWith('node1-1'))).toBe(true)
    expect(r.delivered).toBe(r.pairs - r.failed.length)
  })
})
