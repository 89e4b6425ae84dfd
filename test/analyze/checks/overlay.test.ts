import {describe, expect, it} from 'vitest'

import {broken, codes, findings, node, only} from './helpers.js'

// flannel-vxlan lab (col-fx): node1 172.31.0.11, node2 172.31.0.12 (VTEP 26:e0:d3:be:af:be), node3 172.31.0.13 (86:b9:62:39:2f:12)
const NODE2_MAC = '26:e0:d3:be:af:be'
const NODE3_MAC = '86:b9:62:39:2f:12'
const fdbOf = (s: any, n: string, mac: string) => node(s, n).fdb.find((f) => f.dev === 'flannel.1' && f.mac === mac)!
const neighOf = (s: any, n: string, ip: string) =>
  node(s, n).neighbours.find((x) => x.dev === 'flannel.1' && x.dst === ip)!

describe('overlay: FDB', () => {
  it('FDB_MISSING: node1 lost the entry for node2', () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').fdb = node(s, 'node1').fdb.filter((f) => f.mac !== NODE2_MAC)
    })
    const f = only(s, 'FDB_MISSING')
    expect(f).toMatchObject({severity: 'error', node: 'node1', subject: 'flannel.1 → node2 (172.31.0.12)'})
    expect(f.evidence).toContain(`node2: flannel.alpha.coreos.com/backend-data: {"VNI":1,"VtepMAC":"${NODE2_MAC}"}`)
    expect(f.evidence).toContain(`${NODE3_MAC} dev flannel.1 dst 172.31.0.13 self permanent`)
    expect(f.fix).toContain(`bridge fdb replace ${NODE2_MAC} dev flannel.1 dst 172.31.0.12 self permanent`)
    expect(codes(s)).toEqual(['FDB_MISSING'])
  })

  it('an FDB that could not be read raises nothing', () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').fdb = []
      node(s, 'node1').sections.fdb = {status: 'error', message: 'bridge: exit code 1'}
    })
    expect(codes(s)).toEqual([])
  })

  it('FDB_STALE: the entry for node2 points at an address that is no node', () => {
    const s = broken('flannel-vxlan', (s) => {
      fdbOf(s, 'node1', NODE2_MAC).dst = '172.31.0.99'
    })
    const f = only(s, 'FDB_STALE')
    expect(f).toMatchObject({node: 'node1', subject: `flannel.1: ${NODE2_MAC} dst 172.31.0.99`})
    expect(f.evidence).toEqual([`${NODE2_MAC} dev flannel.1 dst 172.31.0.99 self permanent`])
    expect(f.fix.split('\n')).toContain(`bridge fdb del ${NODE2_MAC} dev flannel.1 dst 172.31.0.99`)
    expect(f.fix.split('\n')).toContain(`bridge fdb replace ${NODE2_MAC} dev flannel.1 dst 172.31.0.12 self permanent`)
    expect(codes(s)).toEqual(['FDB_STALE'])
  })

  it("FDB_STALE: node3's VTEP MAC sent to node2's address; a MAC and IP of nobody gets no made-up peer", () => {
    const s = broken('flannel-vxlan', (s) => {
      fdbOf(s, 'node1', NODE2_MAC).mac = NODE3_MAC
      node(s, 'node2').fdb.push({
        mac: 'de:ad:be:ef:00:01',
        dev: 'flannel.1',
        dst: '172.31.0.77',
        self: true,
        permanent: true,
        static: false,
        state: 'permanent',
      })
    })
    const stale = findings(s, 'FDB_STALE')
    expect(stale.map((f) => [f.node, f.subject])).toEqual([
      ['node1', `flannel.1: ${NODE3_MAC} dst 172.31.0.12`],
      ['node2', 'flannel.1: de:ad:be:ef:00:01 dst 172.31.0.77'],
    ])
    expect(stale[0]!.message).toContain(`${NODE3_MAC} is node3's VTEP, but 172.31.0.12 is node2`)
    // no peer owns the orphan: only the delete, no command aimed at a guessed node
    expect(stale[1]!.fix.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'bridge fdb del de:ad:be:ef:00:01 dev flannel.1 dst 172.31.0.77',
    ])
  })
})

describe('overlay: neighbours and VTEP MACs', () => {
  it("NEIGH_MISSING: no neighbour for node3's VTEP; the evidence is the route that needs it", () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node2').neighbours = node(s, 'node2').neighbours.filter((n) => n.dst !== '172.20.3.0')
    })
    const f = only(s, 'NEIGH_MISSING')
    expect(f).toMatchObject({node: 'node2', subject: 'flannel.1 → node3 (172.31.0.13)'})
    expect(f.evidence).toContain('172.20.3.0/24 via 172.20.3.0 dev flannel.1 onlink')
    expect(f.fix).toContain(`ip neigh replace 172.20.3.0 lladdr ${NODE3_MAC} dev flannel.1 nud permanent`)
  })

  it('NEIGH_MISSING: an INCOMPLETE entry is quoted', () => {
    const s = broken('flannel-vxlan', (s) => {
      const n = neighOf(s, 'node1', '172.20.2.0')
      delete n.lladdr
      n.state = ['INCOMPLETE']
    })
    expect(only(s, 'NEIGH_MISSING').evidence).toContain('172.20.2.0 dev flannel.1 INCOMPLETE')
  })

  it('NEIGH_NOT_PERMANENT: a REACHABLE VTEP entry (warning)', () => {
    const s = broken('flannel-vxlan', (s) => {
      neighOf(s, 'node1', '172.20.2.0').state = ['REACHABLE']
    })
    const f = only(s, 'NEIGH_NOT_PERMANENT')
    expect(f).toMatchObject({severity: 'warning', node: 'node1', subject: 'flannel.1 → node2 (172.31.0.12)'})
    expect(f.evidence).toEqual([`172.20.2.0 dev flannel.1 lladdr ${NODE2_MAC} REACHABLE`])
    expect(codes(s)).toEqual(['NEIGH_NOT_PERMANENT'])
  })

  it('VTEP_MAC_MISMATCH: a PERMANENT neighbour with a MAC node2 does not have', () => {
    const s = broken('flannel-vxlan', (s) => {
      neighOf(s, 'node1', '172.20.2.0').lladdr = 'aa:bb:cc:00:00:02'
    })
    const f = only(s, 'VTEP_MAC_MISMATCH')
    expect(f).toMatchObject({node: 'node1', subject: 'flannel.1 → node2 (172.31.0.12)'})
    expect(f.evidence[0]).toBe('172.20.2.0 dev flannel.1 lladdr aa:bb:cc:00:00:02 PERMANENT')
    expect(f.fix).toContain(`ip neigh replace 172.20.2.0 lladdr ${NODE2_MAC} dev flannel.1 nud permanent`)
    expect(f.fix).toContain('bridge fdb del aa:bb:cc:00:00:02 dev flannel.1')
    expect(codes(s)).toEqual(['VTEP_MAC_MISMATCH'])
  })

  it('VTEP_MAC_MISMATCH: an old MAC in both the neighbour and the FDB entry is one finding quoting both', () => {
    const s = broken('flannel-vxlan', (s) => {
      neighOf(s, 'node3', '172.20.2.0').lladdr = 'aa:bb:cc:00:00:02'
      fdbOf(s, 'node3', NODE2_MAC).mac = 'aa:bb:cc:00:00:02'
    })
    const f = only(s, 'VTEP_MAC_MISMATCH')
    expect(f.node).toBe('node3')
    expect(f.evidence).toContain('aa:bb:cc:00:00:02 dev flannel.1 dst 172.31.0.12 self permanent')
    expect(codes(s)).toEqual(['VTEP_MAC_MISMATCH'])
  })

  it("VTEP_MAC_MISMATCH: node2's device MAC differs from its backend-data annotation", () => {
    const s = broken('flannel-vxlan', (s) => {
      s.nodes[1]!.annotations['flannel.alpha.coreos.com/backend-data'] = '{"VNI":1,"VtepMAC":"02:00:00:00:00:aa"}'
    })
    const f = only(s, 'VTEP_MAC_MISMATCH')
    expect(f).toMatchObject({node: 'node2', subject: 'flannel.1 on node2'})
    expect(f.evidence[0]).toMatch(
      new RegExp(
        `^\\d+: flannel\\.1: <.*> mtu 1450 state UNKNOWN link/ether ${NODE2_MAC} vxlan id 1 local 172\\.31\\.0\\.12 dev eth0 dstport 8472 nolearning$`,
      ),
    )
    expect(f.evidence[1]).toBe('node2: flannel.alpha.coreos.com/backend-data: {"VNI":1,"VtepMAC":"02:00:00:00:00:aa"}')
  })
})

describe('overlay: the tunnel device', () => {
  it('TUNNEL_DEVICE_MISSING: flannel.1 gone; the per-peer state through it is not reported again', () => {
    const s = broken('flannel-vxlan', (s) => {
      const n = node(s, 'node1')
      n.links = n.links.filter((l) => l.name !== 'flannel.1')
      n.routes = n.routes.filter((r) => r.dev !== 'flannel.1')
      n.neighbours = n.neighbours.filter((x) => x.dev !== 'flannel.1')
      n.fdb = n.fdb.filter((f) => f.dev !== 'flannel.1')
    })
    const f = only(s, 'TUNNEL_DEVICE_MISSING')
    expect(f).toMatchObject({node: 'node1', subject: 'flannel.1', evidence: ['Device "flannel.1" does not exist.']})
    expect(codes(s)).toEqual(['TUNNEL_DEVICE_MISSING'])
  })

  it('TUNNEL_DEVICE_DOWN: flannel.1 set down (the kernel dropped its routes)', () => {
    const s = broken('flannel-vxlan', (s) => {
      const n = node(s, 'node2')
      const l = n.links.find((x) => x.name === 'flannel.1')!
      Object.assign(l, {adminUp: false, operstate: 'DOWN', flags: ['BROADCAST', 'MULTICAST']})
      n.routes = n.routes.filter((r) => r.dev !== 'flannel.1' || r.table !== 'main')
    })
    const f = only(s, 'TUNNEL_DEVICE_DOWN')
    expect(f.node).toBe('node2')
    expect(f.evidence[0]).toMatch(/^\d+: flannel\.1: <BROADCAST,MULTICAST> mtu 1450 state DOWN /)
    expect(f.fix.split('\n')[0]).toBe('ip link set flannel.1 up')
    expect(codes(s)).toEqual(['TUNNEL_DEVICE_DOWN'])
  })

  it('VXLAN_PORT_MISMATCH and VNI_MISMATCH name the odd node out, with a node that agrees as contrast', () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node3').links.find((l) => l.name === 'flannel.1')!.vxlan!.port = 4789
      node(s, 'node2').links.find((l) => l.name === 'flannel.1')!.vxlan!.vni = 2
    })
    const port = only(s, 'VXLAN_PORT_MISMATCH')
    expect(port).toMatchObject({node: 'node3', subject: 'flannel.1'})
    expect(port.evidence[0]).toContain('dstport 4789')
    expect(port.evidence[1]).toMatch(/^node1: .*dstport 8472/)
    expect(port.fix).toContain('(8472)')
    const vni = only(s, 'VNI_MISMATCH')
    expect(vni.node).toBe('node2')
    expect(vni.evidence[0]).toContain('vxlan id 2 ')
  })

  it('VXLAN_CSUM_OFFLOAD: checksum offload on a kernel older than 5.7 is information only', () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').kernel = '4.18.0-348.el8.x86_64'
    })
    const f = only(s, 'VXLAN_CSUM_OFFLOAD')
    expect(f).toMatchObject({severity: 'info', node: 'node1', subject: 'flannel.1'})
    expect(f.evidence).toEqual(['uname -r: 4.18.0-348.el8.x86_64', 'ethtool -k flannel.1: tx-checksum-ip-generic: on'])
    expect(f.fix.split('\n')[0]).toBe('ethtool -K flannel.1 tx-checksum-ip-generic off')
  })

  it('VXLAN_CSUM_OFFLOAD: not with the offload off, nor on a fixed kernel', () => {
    const off = broken('flannel-vxlan', (s) => {
      node(s, 'node1').kernel = '4.18.0-348.el8.x86_64'
      node(s, 'node1').offloads!['flannel.1']!['tx-checksum-ip-generic'] = false
    })
    expect(codes(off)).toEqual([])
    const fixed = broken('flannel-vxlan', (s) => {
      node(s, 'node1').kernel = '5.7.0'
    })
    expect(codes(fixed)).toEqual([])
  })
})

describe('overlay: Calico vxlan', () => {
  it('FDB_MISSING on vxlan.calico names the VTEP MAC from projectcalico.org/VXLANTunnelMACAddr', () => {
    const s = broken('calico-vxlan', (s) => {
      node(s, 'node3').fdb = node(s, 'node3').fdb.filter((f) => !(f.dev === 'vxlan.calico' && f.dst === '172.31.0.11'))
    })
    const mac = s.nodes[0]!.annotations['projectcalico.org/VXLANTunnelMACAddr']!
    const f = only(s, 'FDB_MISSING')
    expect(f).toMatchObject({node: 'node3', subject: 'vxlan.calico → node1 (172.31.0.11)'})
    expect(f.evidence[0]).toBe(`node1: projectcalico.org/VXLANTunnelMACAddr: ${mac}`)
    expect(f.fix).toContain(`bridge fdb replace ${mac} dev vxlan.calico dst 172.31.0.11 self permanent`)
  })
})

describe('overlay: flannel udp', () => {
  it('UDP_DAEMON_DOWN: the forwarder is not among the processes; flannel0 and its route remain', () => {
    const s = broken('flannel-udp', (s) => {
      node(s, 'node2').processes = []
    })
    const f = only(s, 'UDP_DAEMON_DOWN')
    expect(f.node).toBe('node2')
    expect(f.evidence[0]).toMatch(/^\d+: flannel0: <.*> mtu 1472 state UNKNOWN link\/none tun type tun nopi$/)
    expect(f.evidence[1]).toBe('172.20.0.0/16 dev flannel0 proto kernel scope link src 172.20.2.0')
    expect(codes(s)).toEqual(['UDP_DAEMON_DOWN'])
  })

  it('flannel0 gone: TUNNEL_DEVICE_MISSING and UDP_DAEMON_DOWN', () => {
    const s = broken('flannel-udp', (s) => {
      const n = node(s, 'node1')
      n.links = n.links.filter((l) => l.name !== 'flannel0')
      n.routes = n.routes.filter((r) => r.dev !== 'flannel0')
    })
    expect(codes(s)).toEqual(['TUNNEL_DEVICE_MISSING', 'UDP_DAEMON_DOWN'])
    expect(only(s, 'UDP_DAEMON_DOWN').evidence).toEqual(['Device "flannel0" does not exist.'])
  })
})
