import {describe, expect, it} from 'vitest'

import {ownedState, routeVia} from '../../src/backend/plan/current.js'
import {desiredNode} from '../../src/backend/plan/desired.js'
import {diffLines, diffNode} from '../../src/backend/plan/diff.js'
import {describeBackend} from '../../src/backend/plan/drift.js'
import {clusterFacts} from '../../src/backend/plan/facts.js'
import {kernelLines} from '../../src/backend/plan/lines.js'
import {planSwitch} from '../../src/backend/plan/plan.js'
import {fixtureLab, labFacts, probeState, snapshotFixture} from './helpers.js'

const sort = (l: string[]): string[] => [...l].sort()

describe('planning a switch from a collected snapshot', () => {
  const vxlan = snapshotFixture('flannel-vxlan-lab.json')
  const hostgw = snapshotFixture('flannel-host-gw-lab.json')

  it('vxlan → host-gw removes exactly what flannel.1 holds and adds what a host-gw node holds', () => {
    const plan = planSwitch(vxlan, clusterFacts(vxlan), 'flannel-vxlan', 'flannel-host-gw')
    expect(plan.noop).toBe(false)
    const hgFacts = clusterFacts(hostgw)
    for (const n of plan.nodes) {
      const before = kernelLines(ownedState(vxlan.nodeStates[n.node]!, clusterFacts(vxlan)))
      // the two labs share their address plan: a host-gw node's own routes are what must be added
      const after = kernelLines(ownedState(hostgw.nodeStates[n.node]!, hgFacts))
      for (const kind of ['links', 'addresses', 'neighbours', 'fdb'] as const) {
        expect(sort(n.lines![kind].remove)).toEqual(sort(before[kind]))
        expect(n.lines![kind].add).toEqual([])
      }
      expect(sort(n.lines!.routes.add)).toEqual(sort(after.routes))
      expect(sort(n.lines!.routes.remove)).toEqual(sort(before.routes))
      expect(n.daemons).toEqual({start: [], stop: [], reconfigure: []})
    }
  })

  it("host-gw → vxlan: flannel.1 with each node's own VTEP MAC (kept from before the switch)", () => {
    const plan = planSwitch(hostgw, clusterFacts(hostgw), 'flannel-host-gw', 'flannel-vxlan')
    const lab = fixtureLab(hostgw.cluster.name, 'flannel-host-gw')
    for (const n of plan.nodes) {
      const me = lab.nodes.find((x) => x.name === n.node)!
      expect(n.lines!.links.add).toEqual([
        `flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 state UNKNOWN link/ether ${me.vtepMAC} vxlan id 1 local ${me.ip} dev eth0 dstport 8472 nolearning`,
      ])
      for (const peer of lab.nodes.filter((x) => x !== me)) {
        expect(n.lines!.fdb.add).toContain(`${peer.vtepMAC} dev flannel.1 dst ${peer.ip} self permanent`)
      }
    }
  })

  it('the current backend on every node is a no-op', () => {
    expect(planSwitch(vxlan, clusterFacts(vxlan), 'flannel-vxlan', 'flannel-vxlan').noop).toBe(true)
    expect(planSwitch(vxlan, clusterFacts(vxlan), 'flannel-host-gw', 'flannel-vxlan').noop).toBe(false)
  })

  it('vxlan → udp: flannel.1 goes, flannel0 and its daemons come; MTU impact of pods counted from their interfaces', () => {
    const plan = planSwitch(vxlan, clusterFacts(vxlan), 'flannel-vxlan', 'flannel-udp')
    const n = plan.nodes[0]!
    expect(n.lines!.links.add).toEqual([
      'flannel0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1472 state UNKNOWN link/none tun',
    ])
    expect(n.lines!.routes.add).toEqual(['172.20.0.0/16 dev flannel0 proto kernel scope link src 172.20.1.0'])
    expect(n.daemons.start).toEqual(['flannel-udp'])
    const pods = Object.values(vxlan.nodeStates).flatMap((s) => s.pods)
    expect(plan.mtu.podsBelow).toHaveLength(
      pods.filter((p) => p.links.find((l) => l.name === 'eth0')!.mtu < 1472).length,
    )
    expect(plan.mtu.podsBelow.length).toBeGreaterThan(0)
    expect(plan.mtu.podsAbove).toEqual([])
  })

  it('an uncollected node is not planned', () => {
    const partial = {...vxlan, nodeStates: {node1: vxlan.nodeStates.node1!, node2: vxlan.nodeStates.node2!}}
    const plan = planSwitch(partial, clusterFacts(vxlan), 'flannel-vxlan', 'flannel-host-gw')
    expect(plan.nodes.map((n) => n.collected)).toEqual([true, true, false])
  })
})

describe('diffing kernel state', () => {
  const lab = fixtureLab('col-fx', 'flannel-vxlan')
  const facts = labFacts(lab)
  const state = probeState('flannel-vxlan-node1.out', 'node1', lab)

  it('a VTEP whose MAC changed is recreated with everything on it', () => {
    const other = {
      ...facts,
      nodes: facts.nodes.map((n) => (n.name === 'node1' ? {...n, vtepMAC: '02:00:00:00:00:01'} : n)),
    }
    const d = diffLines(diffNode(ownedState(state, facts), desiredNode('flannel-vxlan', other, other.nodes[0]!)))
    expect(d.links.remove).toHaveLength(1)
    expect(d.links.add[0]).toContain('link/ether 02:00:00:00:00:01')
    // everything on flannel.1 goes with it and is written again
    expect(d.routes.add).toEqual(d.routes.remove)
    expect(d.fdb.add).toHaveLength(2)
  })

  it('a routed host-gw node misses the routes the kernel refused across the router (drift named per peer)', () => {
    const routed = fixtureLab('col-fr', 'flannel-host-gw', 'routed')
    const rf = labFacts(routed)
    const node3 = rf.nodes.find((n) => n.name === 'node3')!
    const owned = ownedState(probeState('flannel-host-gw-routed-node3.out', 'node3', routed), rf)
    const missing = diffLines(diffNode(owned, desiredNode('flannel-host-gw', rf, node3))).routes.add
    const across = rf.nodes.filter((n) => n.subnet !== node3.subnet)
    expect(sort(missing)).toEqual(sort(across.map((p) => `${p.podCIDR} via ${p.ip} dev eth0`)))
    for (const p of across) expect(routeVia(owned, node3, p).via).toBe('none')
  })
})

describe('backend get: drift named per node', () => {
  const vxlan = snapshotFixture('flannel-vxlan-lab.json')
  const hostgw = snapshotFixture('flannel-host-gw-lab.json')

  it('configured host-gw, but one node still routes via flannel.1: that node and its peers are named', () => {
    // the two labs share their address plan: node3 still as vxlan left it, the others switched
    const mixed = {...hostgw, nodeStates: {...hostgw.nodeStates, node3: vxlan.nodeStates.node3!}}
    const view = describeBackend(mixed, clusterFacts(mixed), 'flannel-host-gw')
    expect(view.drift).toHaveLength(1)
    expect(view.drift[0]).toMatch(
      /^configured flannel-host-gw but node3 still routes via flannel\.1 \(flannel-vxlan\) to node1, node2/,
    )
    const node3 = view.nodes.find((n) => n.node === 'node3')!
    expect(node3.programmed).toEqual(['flannel-vxlan'])
    expect(node3.drift.unexpected.links).toEqual(
      kernelLines(ownedState(vxlan.nodeStates.node3!, clusterFacts(vxlan))).links,
    )
    expect(view.nodes.filter((n) => n.node !== 'node3').every((n) => n.programmed.join() === 'flannel-host-gw')).toBe(
      true,
    )
  })

  it('the configured backend everywhere: no drift', () => {
    expect(describeBackend(vxlan, clusterFacts(vxlan), 'flannel-vxlan').drift).toEqual([])
  })

  it('a leftover device with every route right is drift too', () => {
    const n1 = vxlan.nodeStates.node1!
    const leftover = {
      ...hostgw,
      nodeStates: {
        ...hostgw.nodeStates,
        node1: {
          ...hostgw.nodeStates.node1!,
          links: [...hostgw.nodeStates.node1!.links, n1.links.find((l) => l.name === 'flannel.1')!],
        },
      },
    }
    const view = describeBackend(leftover, clusterFacts(leftover), 'flannel-host-gw')
    expect(view.drift).toEqual([
      expect.stringMatching(
        /^configured flannel-host-gw but node1 holds 1 line\(s\) that are not flannel-host-gw's \(e\.g\. flannel\.1: /,
      ),
    ])
  })
})
