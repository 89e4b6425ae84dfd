import {describe, expect, it} from 'vitest'

import {runChecks} from '../../../src/analyze/checks/index.js'
import type {Snapshot, SnapshotNode} from '../../../src/model/snapshot.js'
import {snapshot} from './helpers.js'

/**
 * A cluster of `n` nodes that were not collected (the Node objects alone, as
 * after a failed collect), their pod subnets chosen by `podCIDR(i)`. Every
 * node counts the reads of its name and podCIDRs, so a test can see how much
 * work the checks did per node.
 */
function cluster(n: number, podCIDR: (i: number) => string): {s: Snapshot; reads: () => number} {
  const s = snapshot('flannel-host-gw')
  let reads = 0
  const nodes: SnapshotNode[] = []
  for (let i = 0; i < n; i++) {
    const name = `node-${i}`
    const cidrs = [podCIDR(i)]
    const node = {
      internalIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      annotations: {},
      labels: {},
    } as unknown as SnapshotNode
    Object.defineProperty(node, 'name', {enumerable: true, get: () => (reads++, name)})
    Object.defineProperty(node, 'podCIDRs', {enumerable: true, get: () => (reads++, cidrs)})
    nodes.push(node)
  }
  s.nodes = nodes
  s.nodeStates = {}
  s.errors = []
  s.cluster.clusterCIDR = '172.16.0.0/12'
  return {s, reads: () => reads}
}

describe('checks scale linearly with the cluster', () => {
  it('3,000 nodes sharing one podCIDR: one PODCIDR_DUPLICATE naming all of them, with work linear in the nodes', () => {
    const small = cluster(300, () => '172.20.1.0/24')
    const smallFindings = runChecks(small.s)
    const big = cluster(3000, () => '172.20.1.0/24')
    const bigFindings = runChecks(big.s)
    const dup = bigFindings.filter((f) => f.code === 'PODCIDR_DUPLICATE')
    expect(dup).toHaveLength(1)
    expect(dup[0]!.subject).toBe('172.20.1.0/24')
    expect(dup[0]!.message).toMatch(
      /^3000 nodes hold 172\.20\.1\.0\/24 \(node-0, node-1, node-2, node-3, node-4 and 2995 more\)/,
    )
    expect(dup[0]!.evidence).toHaveLength(3000)
    expect(new Set(dup[0]!.evidence)).toEqual(
      new Set(Array.from({length: 3000}, (_, i) => `node-${i}: spec.podCIDR: 172.20.1.0/24`)),
    )
    // every check's output grows with the nodes, not their pairs: ten times the nodes, at most ten times the findings and bytes
    expect(bigFindings.length).toBeLessThanOrEqual(10 * Math.max(1, smallFindings.length))
    expect(JSON.stringify(bigFindings).length).toBeLessThan(11 * JSON.stringify(smallFindings).length)
    // and the work: reads of a node's name and subnets per node stay bounded, they do not grow with the cluster
    expect(big.reads() / 3000).toBeLessThan(100)
    expect(big.reads() / 3000).toBeLessThan(1.5 * (small.reads() / 300))
  })

  it("3,000 /24s inside one node's /12: one PODCIDR_OVERLAP listing them all, found without comparing every pair", () => {
    const make = (n: number) => cluster(n, (i) => (i === 0 ? '172.16.0.0/12' : `172.${20 + (i >> 8)}.${i & 255}.0/24`))
    const small = make(300)
    const smallOver = runChecks(small.s).filter((f) => f.code === 'PODCIDR_OVERLAP' && f.node === undefined)
    const big = make(3000)
    const over = runChecks(big.s).filter((f) => f.code === 'PODCIDR_OVERLAP' && f.node === undefined)
    expect(smallOver).toHaveLength(1)
    expect(over).toHaveLength(1)
    expect(over[0]!.subject).toBe('172.16.0.0/12 / 2999 subnets')
    expect(over[0]!.evidence).toHaveLength(3000)
    expect(over[0]!.evidence[0]).toBe('node-0: spec.podCIDR: 172.16.0.0/12')
    expect(big.reads() / 3000).toBeLessThan(1.5 * (small.reads() / 300))
  })

  it('disjoint and nested subnets: every nested one is found, under its outermost subnet', () => {
    const {s} = cluster(
      5,
      (i) => ['172.20.0.0/16', '172.20.4.0/22', '172.20.5.0/24', '172.21.0.0/24', '172.20.200.0/24'][i]!,
    )
    const over = runChecks(s).filter((f) => f.code === 'PODCIDR_OVERLAP' && f.node === undefined)
    expect(over.map((f) => [f.subject, f.evidence])).toEqual([
      [
        '172.20.0.0/16 / 3 subnets',
        [
          'node-0: spec.podCIDR: 172.20.0.0/16',
          'node-1: spec.podCIDR: 172.20.4.0/22',
          'node-2: spec.podCIDR: 172.20.5.0/24',
          'node-4: spec.podCIDR: 172.20.200.0/24',
        ],
      ],
    ])
  })
})

describe('clashes between nodes: one finding per shared value', () => {
  it('3,000 nodes announcing one address: one NODE_IP_MISMATCH naming all of them', () => {
    const {s, reads} = cluster(3000, (i) => `172.${20 + (i >> 8)}.${i & 255}.0/24`)
    for (const n of s.nodes) n.internalIP = '10.9.9.9'
    const shared = runChecks(s).filter((f) => f.code === 'NODE_IP_MISMATCH')
    expect(shared).toHaveLength(1)
    expect(shared[0]).toMatchObject({subject: 'shared address 10.9.9.9'})
    expect(shared[0]!.node).toBeUndefined()
    expect(shared[0]!.evidence).toHaveLength(3000)
    expect(shared[0]!.fix).toContain('keep 10.9.9.9 on node-0')
    expect(reads() / 3000).toBeLessThan(100)
  })

  it('nodes announcing one VTEP MAC (cloned machines): one VTEP_MAC_MISMATCH naming them', () => {
    const s = snapshot('flannel-vxlan')
    const ann = 'flannel.alpha.coreos.com/backend-data'
    s.nodes[2]!.annotations[ann] = s.nodes[0]!.annotations[ann]!
    const mac = (JSON.parse(s.nodes[0]!.annotations[ann]!) as {VtepMAC: string}).VtepMAC
    const shared = runChecks(s).filter((f) => f.code === 'VTEP_MAC_MISMATCH' && f.subject.startsWith('shared'))
    expect(shared.map((f) => [f.subject, f.node, f.evidence.map((e) => e.split(':')[0])])).toEqual([
      [`shared VTEP MAC ${mac}`, undefined, ['node1', 'node3']],
    ])
    expect(shared[0]!.message).toMatch(/^2 nodes announce the VTEP MAC .* \(node1 and node3\)/)
  })
})
