/**
 * Faults put into recorded snapshots: where the walk stops, the disposition
 * and the finding with the values its fix needs. (The same faults made for
 * real in a lab are in breaks.test.ts.)
 */
import {describe, expect, it} from 'vitest'

import {network, node, snapshotFixture, trace} from './fixtures.js'

const vtepMAC = (snap: ReturnType<typeof snapshotFixture>, name: string): string =>
  JSON.parse(node(snap, name).annotations['flannel.alpha.coreos.com/backend-data']!).VtepMAC

describe('overlay faults (flannel vxlan)', () => {
  it('FDB_MISS with FDB_MISSING naming the peer, its address and its VTEP MAC', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    const n2 = node(snap, 'node2')
    const s1 = snap.nodeStates.node1!
    s1.fdb = s1.fdb.filter((e) => !(e.dev === 'flannel.1' && e.dst === n2.internalIP))
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('FDB_MISS')
    expect(t.findings).toMatchObject([
      {code: 'FDB_MISSING', node: 'node1', subject: `flannel.1 → node2 (${n2.internalIP})`},
    ])
    expect(t.findings[0]!.fix).toContain(
      `bridge fdb replace ${vtepMAC(snap, 'node2')} dev flannel.1 dst ${n2.internalIP} self permanent`,
    )
  })

  it('no exact FDB entry but all-zero flood entries: the copy to node2 is taken, the one to node3 dropped', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    const [n2, n3] = [node(snap, 'node2'), node(snap, 'node3')]
    const s1 = snap.nodeStates.node1!
    s1.fdb = s1.fdb.filter((e) => e.dev !== 'flannel.1')
    for (const n of [n3, n2])
      s1.fdb.push({
        mac: '00:00:00:00:00:00',
        dev: 'flannel.1',
        dst: n.internalIP,
        self: true,
        permanent: true,
        static: false,
      })
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    const encap = t.hops.find((h) => h.action === 'encap')!
    expect(encap.evidence.slice(0, 2)).toEqual([
      `00:00:00:00:00:00 dev flannel.1 dst ${n2.internalIP} self permanent`,
      `no FDB entry for ${vtepMAC(snap, 'node2')} on flannel.1: flooded by the all-zero entries (${n3.internalIP}, ${n2.internalIP})`,
    ])
    expect(encap.packet?.encap[0]?.outerDst).toBe(n2.internalIP)
  })

  it("an FDB entry sending node2's VTEP to node3: FDB_STALE, and node3 rejects the frame", () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    const [n2, n3] = [node(snap, 'node2'), node(snap, 'node3')]
    snap.nodeStates.node1!.fdb.find((e) => e.dev === 'flannel.1' && e.dst === n2.internalIP)!.dst = n3.internalIP
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DECAP_REJECTED')
    expect(t.hops.at(-1)).toMatchObject({node: 'node3', in: 'eth0', findings: ['VTEP_MAC_MISMATCH']})
    expect(t.findings.map((f) => f.code).sort()).toEqual(['FDB_STALE', 'VTEP_MAC_MISMATCH'])
    expect(t.findings.find((f) => f.code === 'FDB_STALE')!.fix).toContain(
      `bridge fdb del ${vtepMAC(snap, 'node2')} dev flannel.1 dst ${n3.internalIP}`,
    )
  })

  it('a receiver on another VNI or UDP port: DECAP_REJECTED with VNI_MISMATCH / VXLAN_PORT_MISMATCH', () => {
    for (const [change, code] of [
      [{vni: 2}, 'VNI_MISMATCH'],
      [{port: 4789}, 'VXLAN_PORT_MISMATCH'],
    ] as const) {
      const snap = snapshotFixture('flannel-vxlan-lab')
      const dev = snap.nodeStates.node2!.links.find((l) => l.name === 'flannel.1')!
      Object.assign(dev.vxlan!, change)
      const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
      expect(t, code).toMatchObject({disposition: 'DECAP_REJECTED', findings: [{code, node: 'node2'}]})
    }
  })

  it('no neighbour for the VTEP address on flannel.1: NEIGHBOR_UNRESOLVED with NEIGH_MISSING (nolearning, no flood entry)', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    const vtep2 = network(node(snap, 'node2').podCIDRs[0]!)
    const s1 = snap.nodeStates.node1!
    s1.neighbours = s1.neighbours.filter((n) => n.dst !== vtep2)
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('NEIGHBOR_UNRESOLVED')
    expect(t.findings).toMatchObject([{code: 'NEIGH_MISSING', node: 'node1'}])
    expect(t.findings[0]!.fix).toBe(
      `# the VTEP MAC is in node2's flannel.alpha.coreos.com/backend-data annotation\nip neigh replace ${vtep2} lladdr ${vtepMAC(snap, 'node2')} dev flannel.1 nud permanent`,
    )
  })

  it('a bridge port that is down: NO_ROUTE with LINK_DOWN', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    const s2 = snap.nodeStates.node2!
    const port = s2.links.find(
      (l) =>
        l.master === 'cni0' &&
        l.peerIfindex !== undefined &&
        s2.pods[0]!.links.some((x) => x.peerIfindex === l.ifindex),
    )!
    Object.assign(port, {adminUp: false, operstate: 'DOWN', flags: ['BROADCAST', 'MULTICAST']})
    const t = trace(snap, 'pod-node1-1', s2.pods[0]!.name)
    expect(t).toMatchObject({
      disposition: 'NO_ROUTE',
      findings: [{code: 'LINK_DOWN', node: 'node2', subject: `${port.name} in col-fx.node2`}],
    })
    expect(t.findings[0]!.fix).toBe(`ip link set ${port.name} up`)
  })

  it("an uplink set up without carrier (the fabric's port down): LINK_DOWN says the far end is down", () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    Object.assign(
      snap.nodeStates.node1!.links.find((l) => l.name === 'eth0')!,
      {
        operstate: 'DOWN',
        flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
      },
    )
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    const f = t.findings.find((x) => x.code === 'LINK_DOWN')!
    expect(f.message).toContain('no carrier')
    expect(f.fix).not.toContain('ip link set eth0 up')
    expect(f.fix).toContain('ip -d link show eth0')
  })
})

describe('routing faults (flannel host-gw)', () => {
  it('two nodes sending a pod range to each other: LOOP', () => {
    const snap = snapshotFixture('flannel-host-gw-lab')
    const [n1, n2, n3] = [node(snap, 'node1'), node(snap, 'node2'), node(snap, 'node3')]
    snap.nodeStates.node1!.routes.find((r) => r.dst === n2.podCIDRs[0])!.gateway = n3.internalIP
    snap.nodeStates.node3!.routes.find((r) => r.dst === n2.podCIDRs[0])!.gateway = n1.internalIP
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('LOOP')
    expect(t.hops.at(-1)).toMatchObject({node: 'node1', in: 'eth0', action: 'drop'})
    expect(t.hops.filter((h) => h.action === 'underlay').map((h) => h.node)).toEqual(['node1', 'node3'])
  })

  it('no route to a peer range: NO_ROUTE with ROUTE_MISSING and the route to add', () => {
    const snap = snapshotFixture('flannel-host-gw-lab')
    const n2 = node(snap, 'node2')
    const s1 = snap.nodeStates.node1!
    s1.routes = s1.routes.filter((r) => r.dst !== n2.podCIDRs[0])
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t).toMatchObject({disposition: 'NO_ROUTE', findings: [{code: 'ROUTE_MISSING', node: 'node1'}]})
    expect(t.findings[0]!.fix).toContain(`ip route replace ${n2.podCIDRs[0]} via ${n2.internalIP} dev eth0 onlink`)
  })
})

describe('the reply on another path (flannel vxlan, node2 answering node1 over eth0)', () => {
  const asymmetric = (rpFilter: string) => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    const n1 = node(snap, 'node1')
    Object.assign(
      snap.nodeStates.node2!.routes.find((r) => r.dst === n1.podCIDRs[0])!,
      {gateway: n1.internalIP, dev: 'eth0', onlink: false, flags: []},
    )
    snap.nodeStates.node1!.sysctls['net.ipv4.conf.all.rp_filter'] = rpFilter
    return trace(snap, 'pod-node1-1', 'pod-node2-1')
  }

  it('is delivered with ASYMMETRIC_PATH when rp_filter is off', () => {
    const t = asymmetric('0')
    expect(t).toMatchObject({disposition: 'DELIVERED', returnPath: {disposition: 'DELIVERED'}})
    expect(t.findings).toMatchObject([{code: 'ASYMMETRIC_PATH', severity: 'warning'}])
  })

  it('is dropped by strict rp_filter on node1 (RP_FILTER_DROP, RP_FILTER_ASYMMETRIC)', () => {
    const t = asymmetric('1')
    expect(t.disposition).toBe('DELIVERED')
    expect(t.returnPath?.disposition).toBe('RP_FILTER_DROP')
    expect(t.returnPath?.hops.at(-1)).toMatchObject({
      node: 'node1',
      in: 'eth0',
      action: 'drop',
      findings: ['RP_FILTER_ASYMMETRIC'],
    })
    expect(t.findings).toMatchObject([{code: 'RP_FILTER_ASYMMETRIC', node: 'node1', subject: 'rp_filter on eth0'}])
    expect(t.findings[0]!.fix).toContain('sysctl -w net/ipv4/conf/eth0/rp_filter=2')
    expect(asymmetric('2').returnPath?.disposition).toBe('DELIVERED')
  })
})

describe('the first hop', () => {
  it("a pod's gateway nobody answers for: NEIGHBOR_UNRESOLVED with BRIDGE_ADDR_MISMATCH", () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    const s1 = snap.nodeStates.node1!
    const bridge = s1.addresses.find((a) => a.dev === 'cni0' && a.family === 'inet')!
    bridge.local = '172.20.9.1'
    // and the local route the kernel keeps for an address goes with it
    s1.routes = s1.routes.filter((r) => !(r.table === 'local' && r.dst === '172.20.1.1/32'))
    for (const p of s1.pods) p.neighbours = []
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('NEIGHBOR_UNRESOLVED')
    expect(t.hops.at(-1)).toMatchObject({
      netns: 'col-fx.node1.pod1',
      out: 'eth0',
      action: 'drop',
      findings: ['BRIDGE_ADDR_MISMATCH'],
    })
    expect(t.findings[0]!.fix).toContain('ip addr add 172.20.1.1/24 dev cni0')
  })

  it('unreachable and prohibit routes: NO_ROUTE, with the route as evidence', () => {
    for (const type of ['unreachable', 'prohibit'] as const) {
      const snap = snapshotFixture('flannel-vxlan-lab')
      const dst = snap.pods.find((p) => p.name === 'pod-node2-1')!.ip
      snap.nodeStates.node1!.routes.push({
        family: 'inet',
        table: 'main',
        type,
        dst: `${dst}/32`,
        onlink: false,
        flags: [],
      })
      const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
      expect(t.disposition, type).toBe('NO_ROUTE')
      expect(t.hops.at(-2)).toMatchObject({
        node: 'node1',
        action: 'route',
        evidence: expect.arrayContaining([`${type} ${dst}`]),
      })
    }
  })
})
