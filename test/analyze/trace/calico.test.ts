/**
 * The walk over Calico: the recorded BGP mesh and VXLAN labs, and IPIP
 * built from the BGP lab (the kernel here has no ipip).
 */
import {describe, expect, it} from 'vitest'

import {actions, node, pod, schemaErrors, snapshotFixture, trace} from './fixtures.js'
import {calicoIpipSnapshot, IPIP_MTU} from './ipip-fixture.js'

describe('Calico BGP mesh (a recorded 3-node lab)', () => {
  const snap = snapshotFixture('calico-bgp-lab')
  const n2 = node(snap, 'node2')
  const [a, b] = [pod(snap, 'pod-node1-1'), pod(snap, 'pod-node2-1')]

  it('leaves the pod by proxy ARP for 169.254.1.1 and takes the route BIRD learnt from node2', () => {
    const t = trace(snap, a.name, b.name)
    expect(t.disposition).toBe('DELIVERED')
    expect(actions(t)).toEqual([
      'route',
      'proxy-arp',
      'veth',
      'route',
      'forward',
      'underlay',
      'route',
      'forward',
      'veth',
      'deliver',
    ])
    expect(t.hops[0]!.lookup).toMatchObject({gateway: '169.254.1.1', dev: 'eth0'})
    const proxy = t.hops[1]!
    expect(proxy).toMatchObject({node: 'node1', action: 'proxy-arp'})
    expect(proxy.evidence[0]).toMatch(
      /^cali\w+ in trc-cb\.node1 answers ARP for 169\.254\.1\.1 with ee:ee:ee:ee:ee:ee: proxy_arp on/,
    )
    expect(proxy.evidence).toContain(`net.ipv4.conf.${proxy.in}.proxy_arp = 1`)
    const route = t.hops[3]!
    expect(route).toMatchObject({in: proxy.in, out: 'eth0', lookup: {gateway: n2.internalIP, dev: 'eth0'}})
    expect(route.evidence).toContain(`${n2.podCIDRs[0]} via ${n2.internalIP} dev eth0 proto bird metric 32`)
    const session = `Mesh_${n2.internalIP.replace(/\./g, '_')}`
    expect(route.evidence).toContain(`${n2.podCIDRs[0]} unicast [${session}] * via ${n2.internalIP} on eth0`)
    expect(route.evidence.some((l) => l.startsWith(`${session} BGP up `) && l.includes('Established'))).toBe(true)
    // strict rp_filter on the cali veth passes: the pod's /32 leads back out of it
    expect(t.hops[4]!.evidence).toContain(
      `rp_filter 1 (strict) on ${proxy.in}: the source must route back out of ${proxy.in}`,
    )
    expect(t.hops[6]).toMatchObject({
      node: 'node2',
      in: 'eth0',
      out: expect.stringMatching(/^cali/),
      evidence: expect.arrayContaining([`${b.ip} dev ${t.hops[6]!.out} scope link`]),
    })
    expect(schemaErrors(t)).toBeUndefined()
  })

  it('names a BGP session that is not Established behind a route it supplied', () => {
    const down = snapshotFixture('calico-bgp-lab')
    const s = down.nodeStates.node1!.bird!.sessions.find((x) => x.neighborAddress === n2.internalIP)!
    Object.assign(s, {state: 'start', bgpState: 'Active', lastError: 'Socket: Connection refused'})
    const t = trace(down, a.name, b.name)
    // the kernel still holds the route: the packet goes, and the finding says it will not for long
    expect(t.disposition).toBe('DELIVERED')
    expect(t.findings).toMatchObject([{code: 'BGP_SESSION_DOWN', node: 'node1', subject: s.name}])
    expect(t.findings[0]!.fix).toContain(`birdc restart ${s.name}`)
  })

  it("ends in BLACKHOLE inside the node's own block where no pod has the address", () => {
    const ghost = snapshotFixture('calico-bgp-lab')
    ghost.pods.push({...b, name: 'ghost', ip: '172.20.2.40'})
    const t = trace(ghost, a.name, 'ghost')
    expect(t.disposition).toBe('BLACKHOLE')
    expect(t.hops.at(-2)).toMatchObject({
      node: 'node2',
      evidence: expect.arrayContaining([`blackhole ${n2.podCIDRs[0]} proto bird metric 32`]),
    })
    expect(t.findings).toMatchObject([{code: 'BLACKHOLE_ROUTE', severity: 'warning', node: 'node2'}])
  })
})

describe('Calico VXLAN (a recorded 3-node lab)', () => {
  it('encapsulates on vxlan.calico with VNI 4096 on UDP 4789', () => {
    const snap = snapshotFixture('calico-vxlan-lab')
    const [n1, n2] = [node(snap, 'node1'), node(snap, 'node2')]
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    expect(actions(t)).toEqual([
      'route',
      'proxy-arp',
      'veth',
      'route',
      'forward',
      'encap',
      'route',
      'underlay',
      'decap',
      'route',
      'forward',
      'veth',
      'deliver',
    ])
    const tunnel = n2.annotations['projectcalico.org/IPv4VXLANTunnelAddr']!
    expect(t.hops[3]).toMatchObject({out: 'vxlan.calico', lookup: {gateway: tunnel, dev: 'vxlan.calico'}})
    expect(t.hops[5]!.evidence[0]).toBe(
      `${n2.annotations['projectcalico.org/VXLANTunnelMACAddr']} dev vxlan.calico dst ${n2.internalIP} self permanent`,
    )
    expect(t.hops[5]!.packet?.encap).toEqual([
      {type: 'vxlan', outerSrc: n1.internalIP, outerDst: n2.internalIP, vni: 4096, port: 4789},
    ])
  })
})

describe('Calico IPIP (built from the BGP lab: no ipip in this kernel)', () => {
  it('wraps the packet in IP protocol 4 on tunl0 and unwraps it on the peer', () => {
    const snap = calicoIpipSnapshot()
    const [n1, n2] = [node(snap, 'node1'), node(snap, 'node2')]
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    expect(actions(t)).toEqual([
      'route',
      'proxy-arp',
      'veth',
      'route',
      'forward',
      'encap',
      'route',
      'underlay',
      'decap',
      'route',
      'forward',
      'veth',
      'deliver',
    ])
    expect(t.hops[3]).toMatchObject({
      out: 'tunl0',
      lookup: {gateway: n2.internalIP, dev: 'tunl0'},
      evidence: expect.arrayContaining([
        `${n2.podCIDRs[0]} via ${n2.internalIP} dev tunl0 proto bird metric 32 onlink`,
        'tunl0 needs no neighbour resolution',
      ]),
    })
    expect(t.hops[5]).toMatchObject({
      action: 'encap',
      packet: {size: 84 + 20, encap: [{type: 'ipip', outerSrc: n1.internalIP, outerDst: n2.internalIP}]},
    })
    expect(t.hops[8]).toMatchObject({
      node: 'node2',
      in: 'eth0',
      out: 'tunl0',
      action: 'decap',
      packet: {size: 84, encap: []},
    })
    expect(t.hops[9]).toMatchObject({in: 'tunl0', lookup: {iif: 'tunl0'}})
    expect(t.returnPath?.disposition).toBe('DELIVERED')
  })

  it('refuses a DF packet over the tunnel MTU at the pod, and a tunl0 MTU with no room for the header on the uplink', () => {
    const snap = calicoIpipSnapshot()
    expect(trace(snap, 'pod-node1-1', 'pod-node2-1', {size: IPIP_MTU}).disposition).toBe('DELIVERED')
    expect(trace(snap, 'pod-node1-1', 'pod-node2-1', {size: IPIP_MTU + 1}).disposition).toBe('MTU_EXCEEDED')
    const tooBig = calicoIpipSnapshot({tunnelMtu: 1500})
    for (const p of Object.values(tooBig.nodeStates).flatMap((s) => [...s.links, ...s.pods.flatMap((x) => x.links)]))
      if (p.name.startsWith('cali') || p.name === 'eth0') p.mtu = 1500
    const t = trace(tooBig, 'pod-node1-1', 'pod-node2-1', {size: 1500})
    expect(t.disposition).toBe('MTU_EXCEEDED')
    expect(t.hops.at(-1)).toMatchObject({node: 'node1', out: 'eth0', packet: {size: 1520}})
    expect(t.findings).toMatchObject([{code: 'MTU_EXCEEDS_ENCAP', node: 'node1', subject: 'tunl0'}])
    expect(t.findings[0]!.fix).toContain('ip link set tunl0 mtu 1480')
  })

  it('is rejected by a node without an IPIP device', () => {
    const snap = calicoIpipSnapshot()
    snap.nodeStates.node2!.links = snap.nodeStates.node2!.links.filter((l) => l.name !== 'tunl0')
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t).toMatchObject({disposition: 'DECAP_REJECTED', findings: [{code: 'TUNNEL_DEVICE_MISSING', node: 'node2'}]})
  })
})
