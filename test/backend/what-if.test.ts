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
import {breakLine} from '../../src/backend/plan/what-if-summary.js'
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

  it('host-gw on a routed lab: one line says how many pairs break and why (the kernel refuses the routes)', () => {
    const vxlan = snapshotFixture('flannel-vxlan-routed-lab')
    const w = whatIf(vxlan, plan(vxlan, 'flannel-host-gw'))
    expect(w.mtu.broken).toEqual([])
    expect(breakLine(w)).toMatch(
      /^4 pod pairs would stop reaching each other \(NO_ROUTE: .*\): the kernel refuses 4 routes of the plan \(Nexthop has invalid gateway: 172\.31\.\d+\.11 is on no subnet of eth0/,
    )
    // each refused route with the batch line netctl runs for it (a forced switch lets exactly those fail)
    expect(w.refused.map((r) => r.op)).toContain('route replace 172.20.3.0/24 via 172.31.2.11 dev eth0')
    // and as `ip route` prints them, what a forced switch's verification expects missing
    expect(w.refusedRoutes).toEqual({
      node1: ['172.20.3.0/24 via 172.31.2.11 dev eth0'],
      node2: ['172.20.3.0/24 via 172.31.2.11 dev eth0'],
      node3: ['172.20.1.0/24 via 172.31.1.11 dev eth0', '172.20.2.0/24 via 172.31.1.12 dev eth0'],
    })
  })

  it("calico-bgp on a routed lab: BIRD's recursive next hop is the router (the route is accepted), and exactly the pairs across it break, lost at the router", () => {
    const vxlan = snapshotFixture('flannel-vxlan-routed-lab')
    const facts = clusterFacts(vxlan)
    const p = plan(vxlan, 'calico-bgp')
    // BIRD (gateway recursive) installs a peer behind the router via the router that reaches it: the node's own route to the peer
    const birdRoutes = p.nodes.map((n) => [
      n.node,
      ((n.diff?.kinds.routes.add ?? []) as Array<{dst: string; gateway?: string; dev?: string; protocol?: string}>)
        .filter((r) => r.gateway)
        .map((r) => `${r.dst} via ${r.gateway} dev ${r.dev} proto ${r.protocol}`),
    ])
    const viaOwnRoute = (from: string, to: string) => {
      const peer = facts.nodes.find((n) => n.name === to)!
      const gw = vxlan.nodeStates[from]!.routes.find((r) => r.dst === '0.0.0.0/0')!.gateway
      const same = facts.nodes.find((n) => n.name === from)!.subnet === peer.subnet
      return `${peer.podCIDR} via ${same ? peer.ip : gw} dev eth0 proto bird`
    }
    expect(birdRoutes).toEqual(
      facts.nodes.map((n) => [n.name, facts.nodes.filter((m) => m !== n).map((m) => viaOwnRoute(n.name, m.name))]),
    )
    expect(birdRoutes.flat(2).join('\n')).toMatch(/172\.20\.3\.0\/24 via 172\.31\.1\.1 dev eth0 proto bird/)
    const w = whatIf(vxlan, p)
    // the kernel takes every route (the router is on the uplink's subnet): nothing refused, nothing expected missing
    expect(w.refused).toEqual([])
    expect(w.refusedRoutes).toEqual({})
    // the router knows no pod route: exactly the pairs across it stop, and only those
    const subnetOfPod = (pod: string) =>
      facts.nodes.find((n) => n.name === vxlan.pods.find((q) => `${q.namespace}/${q.name}` === pod)!.node)!.subnet
    const before = reachabilityMatrix(vxlan).cells.filter((c) => c.disposition === 'DELIVERED')
    expect(before.length).toBeGreaterThan(0)
    const across = before.filter((c) => subnetOfPod(c.src) !== subnetOfPod(c.dst)).map((c) => `${c.src} → ${c.dst}`)
    expect(across.length).toBeGreaterThan(0)
    expect(w.matrix.changed.map((c) => `${c.src} → ${c.dst}`).sort()).toEqual([...across].sort())
    expect([...new Set(w.matrix.changed.map((c) => c.after.disposition))]).toEqual(['NO_ROUTE'])
    expect(breakLine(w)).toMatch(/^\d+ pod pairs would stop reaching each other \(NO_ROUTE: /)
    expect(breakLine(w)).not.toMatch(/refuses/)
  })

  it('calico-bgp → vxlan: pods keep eth0 1500, vxlan.calico carries 1450: the full-size packets of every pair die, one finding per pod with the fix', () => {
    const bgp = snapshotFixture('calico-bgp-lab')
    const w = whatIf(bgp, plan(bgp, 'calico-vxlan'))
    // small packets still get through everywhere: only the full-size ones die
    expect(w.matrix.changed).toEqual([])
    const pods = bgp.pods.filter((p) => !p.hostNetwork)
    const firstPods = bgp.nodes.map((n) => pods.find((p) => p.node === n.name)!)
    expect(w.mtu.broken.map((b) => `${b.src} -> ${b.dst}: ${b.size} ${b.after.disposition} ${b.dev} ${b.mtu}`)).toEqual(
      firstPods.flatMap((a) =>
        firstPods
          .filter((b) => b !== a)
          .map(
            (b) =>
              `${a.namespace}/${a.name} -> ${b.namespace}/${b.name}: 1500 MTU_EXCEEDED vxlan.calico on ${a.node} 1450`,
          ),
      ),
    )
    expect(w.mtu.findings.map((f) => [f.code, f.severity, f.node, f.subject])).toEqual(
      firstPods.map((p) => ['MTU_MISMATCH', 'error', p.node, `eth0 in ${p.namespace}/${p.name}`]),
    )
    expect(w.mtu.findings[0]!.fix).toMatch(/^ip link set eth0 mtu 1450\n# pods keep the MTU/)
    expect(breakLine(w)).toBe(
      'full-size packets (1500 bytes, DF) would die on 6 pod pairs at vxlan.calico on node1 mtu 1450, vxlan.calico on node2 mtu 1450: pods keep their MTU until recreated (MTU_MISMATCH)',
    )
  })

  it('the daemons the switch starts are part of the prediction: vxlan → udp predicts the real udp lab, pair by pair (flannel0 is carried by its daemon)', () => {
    const vxlan = snapshotFixture('flannel-vxlan-lab')
    const w = whatIf(vxlan, plan(vxlan, 'flannel-udp'))
    expect(w).toMatchObject({refused: [], matrix: {changed: []}})
    expect(cells(applyPlan(vxlan, plan(vxlan, 'flannel-udp')).snapshot)).toEqual(
      cells(snapshotFixture('flannel-udp-lab')),
    )
    // and back: the forwarder stopped, flannel0 gone, vxlan's state again
    const udp = snapshotFixture('flannel-udp-lab')
    const back = applyPlan(udp, plan(udp, 'flannel-vxlan')).snapshot
    expect(back.nodeStates.node1!.processes.some((p) => p.name.startsWith('netctl-udp-for'))).toBe(false)
    expect(cells(back)).toEqual(cells(vxlan))
  })

  it('calico-bgp → vxlan predicts the real calico-vxlan lab, pair by pair', () => {
    const bgp = snapshotFixture('calico-bgp-lab')
    expect(cells(applyPlan(bgp, plan(bgp, 'calico-vxlan')).snapshot)).toEqual(
      cells(snapshotFixture('calico-vxlan-lab')),
    )
  })

  it('switches whose overhead the pods fit predict no MTU break: flannel vxlan (pods 1450) → udp (1472) or host-gw (1500)', () => {
    const vxlan = snapshotFixture('flannel-vxlan-lab')
    for (const to of ['flannel-udp', 'flannel-host-gw'] as const) {
      const w = whatIf(vxlan, plan(vxlan, to))
      expect(w.mtu, to).toEqual({broken: [], findings: []})
      expect(breakLine(w), to).toBeUndefined()
    }
  })
})
