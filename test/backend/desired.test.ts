import {describe, expect, it} from 'vitest'

import {ownedState} from '../../src/backend/plan/current.js'
import {desiredNode, desiredState} from '../../src/backend/plan/desired.js'
import {diffIsEmpty, diffLines, diffNode} from '../../src/backend/plan/diff.js'
import {clusterFacts} from '../../src/backend/plan/facts.js'
import {kernelLines} from '../../src/backend/plan/lines.js'
import {KINDS} from '../../src/backend/plan/types.js'
import {fixtureLab, labFacts, probeState, snapshotFixture} from './helpers.js'

const NO_CHANGE = Object.fromEntries(KINDS.map((k) => [k, {add: [], remove: []}]))
const sorted = (k: Record<string, string[]>): Record<string, string[]> =>
  Object.fromEntries(Object.entries(k).map(([x, v]) => [x, [...v].sort()]))

/**
 * The desired state netctl computes for a backend must be exactly what a node
 * of that backend holds: the fixtures are the kernel's own output, captured
 * from labs built by the lab's backend modules.
 */
describe('desired state equals what a real node of the backend holds', () => {
  for (const [file, backend] of [
    ['flannel-vxlan-lab.json', 'flannel-vxlan'],
    ['flannel-host-gw-lab.json', 'flannel-host-gw'],
  ] as const) {
    it(`${backend}: every node of a collected snapshot (${file})`, () => {
      const snap = snapshotFixture(file)
      const facts = clusterFacts(snap)
      for (const want of desiredState(backend, facts)) {
        const have = ownedState(snap.nodeStates[want.node]!, facts)
        const d = diffNode(have, want)
        expect(diffLines(d), want.node).toEqual(NO_CHANGE)
        expect(diffIsEmpty(d)).toBe(true)
      }
    })
  }

  for (const [file, lab, backend, node] of [
    ['flannel-udp-node1.out', 'col-fu', 'flannel-udp', 'node1'],
    ['calico-bgp-node1.out', 'col-cb', 'calico-bgp', 'node1'],
    ['calico-vxlan-node2.out', 'col-cv', 'calico-vxlan', 'node2'],
  ] as const) {
    it(`${backend}: ${file}`, () => {
      const plan = fixtureLab(lab, backend)
      const facts = labFacts(plan)
      const want = desiredNode(
        backend,
        facts,
        facts.nodes.find((n) => n.name === node)!,
      )
      const have = ownedState(probeState(file, node, plan), facts)
      expect(diffLines(diffNode(have, want))).toEqual(NO_CHANGE)
      expect(diffIsEmpty(diffNode(have, want))).toBe(true)
      // the same items, printed as iproute2 prints them (BIRD's metric is its own choice)
      expect(sorted(kernelLines(have)).routes.map((l) => l.replace(/ metric \d+/, ''))).toEqual(
        sorted(kernelLines(want)).routes,
      )
    })
  }

  it('facts: VTEP MACs from the flannel annotation, the uplink and its subnet from the kernel', () => {
    const snap = snapshotFixture('flannel-vxlan-lab.json')
    const facts = clusterFacts(snap)
    for (const n of facts.nodes) {
      const link = snap.nodeStates[n.name]!.links.find((l) => l.name === 'flannel.1')!
      expect(n.vtepMAC).toBe(link.mac)
      expect(n.uplink).toBe('eth0')
      expect(n.subnet).toBe('172.31.0.0/24')
    }
    expect(facts.underlayMTU).toBe(snap.nodeStates.node1!.links.find((l) => l.name === 'eth0')!.mtu)
  })

  it("the VTEP MAC survives a backend without one: the host-gw snapshot has no annotation, the fallback is the lab's own MAC", () => {
    const snap = snapshotFixture('flannel-host-gw-lab.json')
    const plan = fixtureLab(snap.cluster.name, 'flannel-host-gw')
    expect(clusterFacts(snap).nodes.map((n) => n.vtepMAC)).toEqual(plan.nodes.map((n) => n.vtepMAC))
  })
})

describe('desired state of what the lab cannot build', () => {
  const plan = fixtureLab('col-cb', 'calico-bgp', 'routed', 4)
  const facts = labFacts(plan)

  it('calico-ipip: tunl0 with the tunnel address, routes via the peer node onlink on tunl0, proto bird', () => {
    const d = desiredNode('calico-ipip', facts, facts.nodes[0]!)
    expect(kernelLines(d).links).toEqual([
      `tunl0: <NOARP,UP,LOWER_UP> mtu ${plan.underlayMTU - 20} state UNKNOWN link/none ipip`,
    ])
    // as `ip -o -4 addr` prints it, without the index the kernel gives the device when it is made
    expect(kernelLines(d).addresses).toEqual([
      expect.stringMatching(/^tunl0 {4}inet \d+\.\d+\.\d+\.\d+\/32 scope global tunl0$/),
    ])
    for (const peer of facts.nodes.slice(1))
      expect(kernelLines(d).routes).toContain(`${peer.podCIDR} via ${peer.ip} dev tunl0 proto bird onlink`)
  })

  it('CrossSubnet: direct routes to same-subnet peers, the tunnel across the router', () => {
    const me = facts.nodes[0]!
    const d = kernelLines(desiredNode('calico-vxlan-crosssubnet', facts, me))
    for (const peer of facts.nodes.slice(1)) {
      const line =
        peer.subnet === me.subnet
          ? `${peer.podCIDR} via ${peer.ip} dev eth0 proto 80`
          : `${peer.podCIDR} via ${peer.tunnelIP} dev vxlan.calico proto 80 onlink`
      expect(d.routes).toContain(line)
    }
    expect(d.neighbours).toHaveLength(facts.nodes.length - 1)
  })
})
