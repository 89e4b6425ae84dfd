import {describe, expect, it} from 'vitest'

import {broken, codes, findings, node, only, snapshot} from './helpers.js'

const dropRoute = (s: any, n: string, dst: string) => {
  node(s, n).routes = node(s, n).routes.filter((r) => !(r.dst === dst && r.table === 'main'))
}
const route = (s: any, n: string, dst: string) => node(s, n).routes.find((r) => r.dst === dst && r.table === 'main')!

describe('routing: per-peer routes', () => {
  it('ROUTE_MISSING (flannel vxlan): the fix is the route flannel programs', () => {
    const s = broken('flannel-vxlan', (s) => dropRoute(s, 'node1', '172.20.3.0/24'))
    const f = only(s, 'ROUTE_MISSING')
    expect(f).toMatchObject({node: 'node1', subject: '172.20.3.0/24 (node3)'})
    expect(f.fix).toContain('ip route replace 172.20.3.0/24 via 172.20.3.0 dev flannel.1 onlink')
    expect(codes(s)).toEqual(['ROUTE_MISSING'])
  })

  it('ROUTE_MISSING (host-gw): via the peer node on the uplink', () => {
    const s = broken('flannel-host-gw', (s) => dropRoute(s, 'node2', '172.20.1.0/24'))
    expect(only(s, 'ROUTE_MISSING').fix).toContain('ip route replace 172.20.1.0/24 via 172.31.0.11 dev eth0 onlink')
  })

  it('ROUTE_MISSING (Calico): the session to the peer is down and BIRD has no route; the finding says so', () => {
    const s = broken('calico-bgp', (s) => {
      const n = node(s, 'node1')
      dropRoute(s, 'node1', '172.20.3.0/26')
      n.bird!.routes = n.bird!.routes.filter((r) => r.prefix !== '172.20.3.0/26')
      Object.assign(
        n.bird!.sessions.find((x) => x.name === 'Mesh_172_31_0_13')!,
        {state: 'start', bgpState: 'Active', lastError: 'Socket: Connection refused'},
      )
    })
    expect(codes(s)).toEqual(['BGP_SESSION_DOWN', 'ROUTE_MISSING'])
    expect(only(s, 'ROUTE_MISSING').message).toContain('(the BGP session to node3 is Active)')
  })

  it('ROUTE_MISSING (flannel udp): one route for the whole pod network into flannel0', () => {
    const s = broken('flannel-udp', (s) => dropRoute(s, 'node3', '172.20.0.0/16'))
    const f = only(s, 'ROUTE_MISSING')
    expect(f).toMatchObject({node: 'node3', subject: '172.20.0.0/16 dev flannel0'})
    expect(f.fix.split('\n')).toContain('ip route replace 172.20.0.0/16 dev flannel0')
  })

  it("ROUTE_WRONG_NEXTHOP (host-gw): node3's pods sent to node2", () => {
    const s = broken('flannel-host-gw', (s) => {
      route(s, 'node1', '172.20.3.0/24').gateway = '172.31.0.12'
    })
    const f = only(s, 'ROUTE_WRONG_NEXTHOP')
    expect(f).toMatchObject({
      node: 'node1',
      subject: '172.20.3.0/24 (node3)',
      evidence: ['172.20.3.0/24 via 172.31.0.12 dev eth0'],
    })
    expect(f.message).toContain('via 172.31.0.12 (node2)')
    expect(f.fix).toBe('ip route replace 172.20.3.0/24 via 172.31.0.13 dev eth0 onlink')
  })

  it('ROUTE_WRONG_NEXTHOP (Calico vxlan): a block routed natively instead of through vxlan.calico', () => {
    const s = broken('calico-vxlan', (s) => {
      Object.assign(route(s, 'node2', '172.20.1.0/26'), {gateway: '172.31.0.11', dev: 'eth0', onlink: false, flags: []})
    })
    expect(only(s, 'ROUTE_WRONG_NEXTHOP').fix).toBe(
      'ip route replace 172.20.1.0/26 via 172.20.1.0 dev vxlan.calico onlink',
    )
  })
})

describe('routing: leftovers and discards', () => {
  it('ROUTE_STALE: a vxlan route, neighbour and all, for a subnet no node owns', () => {
    const s = broken('flannel-vxlan', (s) => {
      const n = node(s, 'node2')
      n.routes.push({
        family: 'inet',
        table: 'main',
        type: 'unicast',
        dst: '172.20.9.0/24',
        gateway: '172.20.9.0',
        dev: 'flannel.1',
        onlink: true,
        flags: ['onlink'],
      })
      n.neighbours.push({dst: '172.20.9.0', dev: 'flannel.1', lladdr: '02:00:00:00:09:09', state: ['PERMANENT']})
    })
    const f = only(s, 'ROUTE_STALE')
    expect(f).toMatchObject({severity: 'warning', node: 'node2', subject: '172.20.9.0/24'})
    expect(f.evidence).toEqual([
      '172.20.9.0/24 via 172.20.9.0 dev flannel.1 onlink',
      '172.20.9.0 dev flannel.1 lladdr 02:00:00:00:09:09 PERMANENT',
    ])
    expect(f.fix.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'ip route del 172.20.9.0/24',
      'ip neigh del 172.20.9.0 dev flannel.1',
      'bridge fdb del 02:00:00:00:09:09 dev flannel.1',
    ])
  })

  it('ROUTE_STALE (host-gw): no VTEP to remove', () => {
    const s = broken('flannel-host-gw', (s) => {
      node(s, 'node1').routes.push({
        family: 'inet',
        table: 'main',
        type: 'unicast',
        dst: '172.20.9.0/24',
        gateway: '172.31.0.19',
        dev: 'eth0',
        onlink: false,
        flags: [],
      })
    })
    expect(
      only(s, 'ROUTE_STALE')
        .fix.split('\n')
        .filter((l) => !l.startsWith('#')),
    ).toEqual(['ip route del 172.20.9.0/24'])
  })

  it("BLACKHOLE_ROUTE: a blackhole over node2's block on node1; Calico's own-block blackholes are not reported", () => {
    const s = broken('calico-bgp', (s) => {
      Object.assign(route(s, 'node1', '172.20.2.0/26'), {
        type: 'blackhole',
        gateway: undefined,
        dev: undefined,
        protocol: 'boot',
        metric: undefined,
      })
    })
    const f = only(s, 'BLACKHOLE_ROUTE')
    expect(f).toMatchObject({node: 'node1', subject: 'blackhole 172.20.2.0/26', evidence: ['blackhole 172.20.2.0/26']})
    expect(f.message).toContain('node2 (172.20.2.0/26)')
    // BIRD still holds the route the kernel replaced
    expect(codes(s)).toEqual(['BGP_ROUTE_NOT_INSTALLED', 'BLACKHOLE_ROUTE'])
  })

  it('an unreachable route over the whole pod network is no fault while every peer has a more specific route', () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').routes.push({
        family: 'inet',
        table: 'main',
        type: 'unreachable',
        dst: '172.20.0.0/16',
        onlink: false,
        flags: [],
      })
    })
    expect(codes(s)).toEqual([])
    dropRoute(s, 'node1', '172.20.2.0/24')
    expect(codes(s)).toEqual(['BLACKHOLE_ROUTE', 'ROUTE_MISSING'])
    expect(only(s, 'BLACKHOLE_ROUTE').subject).toBe('unreachable 172.20.0.0/16')
  })
})

describe('routing: host-gw across a router (recorded from a routed lab)', () => {
  it('HOSTGW_NOT_L2_ADJACENT once for each side of the router, naming the nodes on both, and nothing else', () => {
    const s = snapshot('flannel-host-gw-routed')
    const f = findings(s)
    expect(f.map((x) => [x.code, x.node, x.subject])).toEqual([
      ['HOSTGW_NOT_L2_ADJACENT', undefined, '172.31.1.0/24 → 172.31.2.0/24'],
      ['HOSTGW_NOT_L2_ADJACENT', 'node3', '172.31.2.0/24 → 172.31.1.0/24'],
    ])
    expect(f[0]!.evidence).toEqual([
      '172.31.1.0/24 dev eth0 proto kernel scope link src 172.31.1.11',
      'default via 172.31.1.1 dev eth0',
    ])
    expect(f[0]!.message).toContain('node3 (172.31.2.11) is not on the subnet 172.31.1.0/24 of node1 and node2')
    expect(f[1]!.message).toContain(
      'node1 (172.31.1.11) and node2 (172.31.1.12) are not on the subnet 172.31.2.0/24 of node3',
    )
  })

  it('stays one finding per side however many nodes sit behind the router (not one per node pair)', () => {
    const s: any = snapshot('flannel-host-gw-routed')
    const far = s.nodes.find((n: any) => n.name === 'node3')
    const farState = s.nodeStates.node3 ?? s.nodeStates[s.nodes.indexOf(far)]
    for (let k = 4; k < 44; k++) {
      const ip = `172.31.2.${k + 20}`
      const copy = structuredClone(far)
      Object.assign(copy, {name: `node${k}`, internalIP: ip, podCIDRs: [`172.20.${k}.0/24`]})
      copy.annotations['flannel.alpha.coreos.com/public-ip'] = ip
      const state = structuredClone(farState)
      for (const a of state.addresses ?? []) if (a.local === far.internalIP) a.local = ip
      s.nodes.push(copy)
      if (Array.isArray(s.nodeStates)) s.nodeStates.push(state)
      else s.nodeStates[copy.name] = state
    }
    const f = findings(s, 'HOSTGW_NOT_L2_ADJACENT')
    expect(f.map((x) => x.subject)).toEqual(['172.31.1.0/24 → 172.31.2.0/24', '172.31.2.0/24 → 172.31.1.0/24'])
    expect(f[0]!.message).toContain('node3 (172.31.2.11), node4 (172.31.2.24)')
    expect(f[0]!.message).toContain('and 36 more')
    expect(f[1]!.message).toMatch(
      /^node1 \(172\.31\.1\.11\) and node2 \(172\.31\.1\.12\) are not on the subnet 172\.31\.2\.0\/24 of node3, node4/,
    )
  })
})

describe('routing: native routes on a tunnel backend (flannel DirectRouting, Calico CrossSubnet)', () => {
  /** node A routes node B's pods over eth0 and keeps no vxlan state for B, as DirectRouting does. */
  const direct = (s: any, a: string, b: string, bIP: string, bNet: string, bVtep: string) => {
    const n = node(s, a)
    Object.assign(route(s, a, bNet), {gateway: bIP, dev: 'eth0', onlink: false, flags: []})
    n.fdb = n.fdb.filter((f) => f.dst !== bIP)
    n.neighbours = n.neighbours.filter((x) => !(x.dev === 'flannel.1' && x.dst === bVtep))
  }

  it('adjacent peers routed natively both ways, without tunnel state: nothing to report, strict rp_filter included', () => {
    const s = broken('flannel-vxlan', (s) => {
      direct(s, 'node1', 'node2', '172.31.0.12', '172.20.2.0/24', '172.20.2.0')
      direct(s, 'node2', 'node1', '172.31.0.11', '172.20.1.0/24', '172.20.1.0')
      node(s, 'node1').sysctls['net.ipv4.conf.all.rp_filter'] = '1'
    })
    expect(codes(s)).toEqual([])
  })

  it('native one way only: replies arrive on flannel.1 and strict rp_filter drops them', () => {
    const s = broken('flannel-vxlan', (s) => {
      direct(s, 'node1', 'node2', '172.31.0.12', '172.20.2.0/24', '172.20.2.0')
      node(s, 'node1').sysctls['net.ipv4.conf.all.rp_filter'] = '1'
    })
    expect(codes(s)).toEqual(['RP_FILTER_ASYMMETRIC'])
    expect(only(s, 'RP_FILTER_ASYMMETRIC').subject).toBe('flannel.1 rp_filter')
  })
})
