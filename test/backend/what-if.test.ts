/**
 * The what-if of a backend switch over recorded lab snapshots: the plan
 * applied to the state (pure), and the matrix it predicts against the matrix
 * of a real lab built with the target backend on the same topology.
 */
import {describe, expect, it} from 'vitest'

import {reachabilityMatrix} from '../../src/analyze/matrix.js'
import {clusterFacts} from '../../src/backend/plan/facts.js'
import {planSwitch} from '../../src/backend/plan/plan.js'
import type {BackendType, ConfiguredBackend} from '../../src/backend/plan/types.js'
import {applyPlan, whatIf} from '../../src/backend/plan/what-if.js'
import type {Snapshot} from '../../src/model/snapshot.js'
import {snapshotFixture} from '../helpers/fixtures.js'

const plan = (s: Snapshot, to: BackendType) =>
  planSwitch(s, clusterFacts(s), s.cluster.backend as ConfiguredBackend, to)
const cells = (s: Snapshot) =>
  reachabilityMatrix(s).cells.map(
    (c) => `${c.src} → ${c.dst}: ${c.disposition}${c.stoppedAt ? ` at ${c.stoppedAt}` : ''}`,
  )

describe('what-if of a backend switch', () => {
  it("host-gw on a routed lab: the kernel refuses the routes across the router, and the predicted matrix is the real host-gw lab's, pair by pair", () => {
    const vxlan = snapshotFixture('flannel-vxlan-routed-lab')
    const hostgw = snapshotFixture('flannel-host-gw-routed-lab')
    // the same topology: the same nodes on the same subnets, the same pods
    expect(vxlan.nodes.map((n) => [n.name, n.internalIP, n.podCIDRs])).toEqual(
      hostgw.nodes.map((n) => [n.name, n.internalIP, n.podCIDRs]),
    )
    const p = plan(vxlan, 'flannel-host-gw')
    const {snapshot: predicted, refused} = applyPlan(vxlan, p)
    expect(refused.map((r) => `${r.node}: ${r.route}`).sort()).toEqual([
      'node1: ip route add 172.20.3.0/24 via 172.31.2.11 dev eth0',
      'node2: ip route add 172.20.3.0/24 via 172.31.2.11 dev eth0',
      'node3: ip route add 172.20.1.0/24 via 172.31.1.11 dev eth0',
      'node3: ip route add 172.20.2.0/24 via 172.31.1.12 dev eth0',
    ])
    expect(cells(predicted)).toEqual(cells(hostgw))
    const w = whatIf(vxlan, p)
    expect(w.matrix.changed.map((c) => `${c.src} → ${c.dst}`).sort()).toEqual(
      reachabilityMatrix(hostgw)
        .cells.filter((c) => c.disposition !== 'DELIVERED')
        .map((c) => `${c.src} → ${c.dst}`)
        .sort(),
    )
    // each changed pair comes with the routes its walk lost (the vxlan route gone, the host-gw one refused)
    for (const c of w.matrix.changed)
      expect(c.changes.some((n) => n.sections.some((s) => s.section === 'ip route show table all'))).toBe(true)
  })

  it('host-gw on a flat lab, and back to vxlan: nothing refused, no pair changes, the same matrix as the real lab', () => {
    const vxlan = snapshotFixture('flannel-vxlan-lab')
    const w = whatIf(vxlan, plan(vxlan, 'flannel-host-gw'))
    expect(w).toMatchObject({refused: [], matrix: {changed: []}})
    const predicted = applyPlan(vxlan, plan(vxlan, 'flannel-host-gw')).snapshot
    expect(predicted.nodeStates.node1!.links.some((l) => l.name === 'flannel.1')).toBe(false)
    expect(cells(predicted)).toEqual(cells(snapshotFixture('flannel-host-gw-lab')))
    const hostgw = snapshotFixture('flannel-host-gw-lab')
    expect(whatIf(hostgw, plan(hostgw, 'flannel-vxlan'))).toMatchObject({refused: [], matrix: {changed: []}})
  })
})
