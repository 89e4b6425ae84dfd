import {describe, expect, it} from 'vitest'

import {ParseError} from '../../../src/collect/parse/errors.js'
import {
  normalizeDst,
  parseAddresses,
  parseFdb,
  parseLinks,
  parseNeighbours,
  parseRoutes,
  parseRules,
} from '../../../src/collect/parse/iproute.js'
import {planLab} from '../../../src/lab/topology.js'
import {fixture, sectionOf} from '../../helpers/fixtures.js'

// fixtures/probe/flannel-vxlan-node1.out was captured from node1 of `lab up --name col-fx --nodes 3`:
// the lab's plan says what its kernel state must be.
const vxlanPlan = planLab(
  {
    name: 'col-fx',
    nodes: 3,
    podsPerNode: 2,
    backend: 'flannel-vxlan',
    topology: 'flat',
    routeReflectors: 1,
    ssh: false,
  },
  '/nonexistent',
)
const hostgwPlan = planLab(
  {
    name: 'col-fh',
    nodes: 3,
    podsPerNode: 2,
    backend: 'flannel-host-gw',
    topology: 'flat',
    routeReflectors: 1,
    ssh: false,
  },
  '/nonexistent',
)
const node1 = vxlanPlan.nodes[0]!
const vxPeers = vxlanPlan.nodes.slice(1)

describe('ip -j -d link (real, flannel vxlan node)', () => {
  const links = parseLinks(sectionOf('flannel-vxlan-node1.out', 'links'))

  it('reads flannel.1 as flannel makes it: VNI 1, port 8472, nolearning, on eth0 with the node IP', () => {
    const f = links.find((l) => l.name === 'flannel.1')!
    expect(f.kind).toBe('vxlan')
    expect(f.vxlan).toEqual({vni: 1, port: 8472, learning: false, local: node1.ip, dev: 'eth0'})
    expect(f.mac).toBe(node1.vtepMAC)
    expect(f.mtu).toBe(vxlanPlan.underlayMTU - 50)
    expect(f.adminUp).toBe(true)
  })

  it('reads cni0 as a bridge and every pod veth as its port, with the peer in another netns', () => {
    const cni0 = links.find((l) => l.name === 'cni0')!
    expect(cni0.kind).toBe('bridge')
    const ports = links.filter((l) => l.master === 'cni0')
    expect(ports.map((p) => p.name).sort()).toEqual(
      vxlanPlan.pods
        .filter((p) => p.node === 'node1')
        .map((p) => p.hostVeth)
        .sort(),
    )
    for (const p of ports) {
      expect(p.kind).toBe('veth')
      expect(p.peerIfindex).toBeGreaterThan(0)
      expect(p.linkNetnsid).toBeGreaterThanOrEqual(0)
      // info_slave_data of a bridge port: this lab ran no bridge plugin, so hairpin is the kernel's default (off)
      expect(p.bridgePort).toEqual({hairpin: false})
    }
    expect(cni0.bridgePort).toBeUndefined()
  })

  it("reads a bridge port's hairpin mode as `ip -d -j link` gives it (info_slave_kind bridge)", () => {
    const port = (hairpin: unknown, kind = 'bridge') =>
      JSON.stringify([
        {
          ifindex: 4,
          ifname: 'veth1',
          flags: ['UP'],
          mtu: 1450,
          operstate: 'UP',
          master: 'cni0',
          linkinfo: {
            info_kind: 'veth',
            info_slave_kind: kind,
            info_slave_data: {state: 'forwarding', hairpin, guard: false},
          },
        },
      ])
    expect(parseLinks(port(true))[0]!.bridgePort).toEqual({hairpin: true})
    expect(parseLinks(port(false))[0]!.bridgePort).toEqual({hairpin: false})
    // a bond slave, or an iproute2 that printed no boolean: not known, not off
    expect(parseLinks(port(true, 'bond'))[0]!.bridgePort).toBeUndefined()
    expect(parseLinks(port('on'))[0]!.bridgePort).toBeUndefined()
  })

  it('knows loopback has no kind and is up', () => {
    const lo = links.find((l) => l.name === 'lo')!
    expect(lo.kind).toBeUndefined()
    expect(lo.flags).toContain('LOOPBACK')
  })
})

describe('ip -j route show table all (real)', () => {
  it('flannel vxlan: one onlink route per peer via the peer .0 on flannel.1, and cni0 for the own podCIDR', () => {
    const routes = parseRoutes(sectionOf('flannel-vxlan-node1.out', 'routes4'), 'inet')
    for (const peer of vxPeers) {
      const r = routes.find((x) => x.dst === peer.podCIDR && x.table === 'main')!
      expect(r).toMatchObject({gateway: peer.podCIDR.split('/')[0], dev: 'flannel.1', onlink: true, type: 'unicast'})
    }
    expect(routes.find((x) => x.dst === node1.podCIDR && x.table === 'main')).toMatchObject({
      dev: 'cni0',
      scope: 'link',
      protocol: 'kernel',
    })
    // the local table is there too, host addresses as /32
    expect(routes.find((x) => x.table === 'local' && x.type === 'local' && x.dst === `${node1.ip}/32`)).toBeDefined()
  })

  it('host-gw: a plain route per peer via its node IP on eth0', () => {
    const me = hostgwPlan.nodes[1]!
    const routes = parseRoutes(sectionOf('flannel-host-gw-node2.out', 'routes4'), 'inet')
    for (const peer of hostgwPlan.nodes.filter((n) => n !== me)) {
      expect(routes.find((x) => x.dst === peer.podCIDR)).toMatchObject({gateway: peer.ip, dev: 'eth0', onlink: false})
    }
  })

  it('IPv6 routes of the same node carry family inet6', () => {
    const routes = parseRoutes(sectionOf('flannel-vxlan-node1.out', 'routes6'), 'inet6')
    expect(routes.length).toBeGreaterThan(0)
    expect(routes.every((r) => r.family === 'inet6' && r.dst.includes(':'))).toBe(true)
  })

  it('a BIRD multipath route keeps every next hop', () => {
    const routes = parseRoutes(fixture('iproute', 'route4-bird-multipath.json'), 'inet')
    const mp = routes.find((r) => r.nexthops)!
    expect(mp.protocol).toBe('bird')
    expect(mp.gateway).toBeUndefined()
    expect(mp.nexthops!.map((h) => h.gateway)).toEqual(['172.31.0.12', '172.31.0.13'])
  })
})

describe('iproute2 JSON quirks', () => {
  const routes = parseRoutes(fixture('iproute', 'route4-quirks.json'), 'inet')
  const by = (dst: string) => routes.find((r) => r.dst === dst)

  it('dst "default" and bare host addresses become CIDRs', () => {
    expect(by('0.0.0.0/0')).toMatchObject({gateway: '10.0.0.1', dev: 'eth0', table: 'main', type: 'unicast'})
    expect(by('192.168.11.5/32')).toMatchObject({dev: 'cali1f2a3b4c5d6', scope: 'link'})
    expect(normalizeDst('default', 'inet6')).toBe('::/0')
  })

  it('missing flags, numeric tables, protocol numbers and types', () => {
    expect(by('10.244.0.0/24')).toMatchObject({flags: [], onlink: false})
    expect(by('10.40.0.0/16')!.table).toBe('100')
    expect(by('192.168.14.0/26')!.protocol).toBe('80')
    expect(by('192.168.11.0/26')!.type).toBe('blackhole')
    expect(by('10.99.0.0/16')).toMatchObject({type: 'unreachable', metric: 1024})
  })

  it('an unknown route type is kept as a flag instead of failing the section', () => {
    expect(by('10.30.0.0/16')).toMatchObject({type: 'unicast', flags: ['type:fancy']})
  })

  it('multipath nexthops and a gateway of the other family (via)', () => {
    expect(by('10.10.0.0/16')!.nexthops).toEqual([
      {gateway: '10.0.0.1', dev: 'eth0', weight: 1, onlink: false},
      {gateway: '10.0.0.2', dev: 'eth0', weight: 2, onlink: true},
    ])
    expect(by('10.20.0.0/16')!.gateway).toBe('fe80::1')
  })

  it('IPv6: default, host routes as /128, multipath', () => {
    const r6 = parseRoutes(fixture('iproute', 'route6-quirks.json'), 'inet6')
    expect(r6.find((r) => r.dst === '::/0')!.gateway).toBe('fe80::1')
    expect(r6.find((r) => r.dst === 'fd00:10:244::5/128')!.dev).toBe('cali1f2a3b4c5d6')
    expect(r6.find((r) => r.dst === 'fd00:20::/64')!.nexthops!.map((h) => h.dev)).toEqual(['eth0', 'eth1'])
  })

  it('links: Calico devices, tun, old-style veth peer, dstport and upper-case MACs', () => {
    const links = parseLinks(fixture('iproute', 'links-calico.json'))
    const l = (n: string) => links.find((x) => x.name === n)!
    expect(l('vxlan.calico').vxlan).toMatchObject({vni: 4096, port: 4789, learning: false, dev: 'eth0'})
    expect(l('tunl0').kind).toBe('ipip')
    expect(l('tunl0').mac).toBeUndefined()
    expect(l('cali1f2a3b4c5d6')).toMatchObject({mac: 'ee:ee:ee:ee:ee:ee', peerIfindex: 3, linkNetnsid: 1})
    expect(l('cali7e8d9c0b1a2')).toMatchObject({peerIfindex: 3, operstate: 'LOWERLAYERDOWN'})
    expect(l('flannel0').tun).toEqual({type: 'tun', pi: false})
    expect(l('flannel.1')).toMatchObject({
      mac: 'ae:01:02:03:04:05',
      adminUp: false,
      vxlan: {vni: 1, port: 8472, learning: true},
    })
    expect(l('eth0').kind).toBeUndefined()
  })

  it('neighbours: router/proxy flags printed as null, missing state and lladdr', () => {
    const n = parseNeighbours(fixture('iproute', 'neigh-quirks.json'))
    expect(n.find((x) => x.dst === '10.244.1.0')).toMatchObject({state: ['PERMANENT'], lladdr: 'ae:01:02:03:04:05'})
    expect(n.find((x) => x.dst === '10.0.0.1')).toMatchObject({router: true, lladdr: '52:54:00:aa:bb:cc'})
    expect(n.find((x) => x.dst === '10.0.0.9')!.lladdr).toBeUndefined()
    expect(n.find((x) => x.dst === '10.0.0.50')).toMatchObject({proxy: true, state: []})
  })

  it('fdb: self/permanent/static, vni and port, master entries, and the older "dev" key', () => {
    const f = parseFdb(fixture('iproute', 'fdb-quirks.json'))
    expect(f[0]).toMatchObject({dev: 'flannel.1', dst: '10.0.0.12', self: true, permanent: true, static: false})
    expect(f[1]).toMatchObject({vni: 42, port: 4789})
    expect(f[2]).toMatchObject({master: 'cni0', self: false, permanent: false})
    expect(f[2]!.state).toBeUndefined()
    expect(f[3]!.vlan).toBe(1)
    expect(f[4]).toMatchObject({dev: 'vxlan.calico', static: true, permanent: false})
  })

  it('rules: prefixes with lengths, not, fwmark/mask, blackhole, goto, iif', () => {
    const r = parseRules(fixture('iproute', 'rules-quirks.json'), 'inet')
    const p = (n: number) => r.find((x) => x.priority === n)!
    expect(p(0)).toEqual({family: 'inet', priority: 0, action: 'lookup', table: 'local'})
    expect(p(100).src).toBe('10.244.0.0/16')
    expect(p(101)).toMatchObject({not: true, dst: '10.96.0.0/12', table: 'main'})
    expect(p(102)).toMatchObject({iif: 'cali1f2a3b4c5d6', fwmark: '0x10000/0x10000', table: '250'})
    expect(p(103)).toMatchObject({src: '10.0.0.5/32', action: 'blackhole'})
    expect(p(104).action).toBe('goto')
    expect(p(105).action).toBe('unreachable')
  })

  it('addresses: flattened per device, both families', () => {
    const a = parseAddresses(sectionOf('flannel-vxlan-node1.out', 'addresses'))
    expect(a.find((x) => x.dev === 'eth0' && x.family === 'inet')).toMatchObject({
      local: node1.ip,
      prefixlen: 24,
      scope: 'global',
    })
    expect(a.find((x) => x.dev === 'flannel.1' && x.family === 'inet')).toMatchObject({
      local: node1.podCIDR.split('/')[0],
      prefixlen: 32,
    })
    expect(a.some((x) => x.family === 'inet6' && x.scope === 'link')).toBe(true)
  })

  it('empty output (older iproute2 prints nothing for an empty table) is an empty list', () => {
    expect(parseRoutes('', 'inet')).toEqual([])
    expect(parseNeighbours('\n')).toEqual([])
  })
})

describe('malformed and truncated iproute2 output', () => {
  it.each([
    ['links-truncated.json', /links: invalid JSON/],
    ['links-not-array.json', /links: expected a JSON array, got object/],
    ['links-missing-name.json', /links: entry 0 has no ifname/],
  ])('%s gives a ParseError', (file, message) => {
    const run = () => parseLinks(fixture('iproute', file))
    expect(run).toThrow(ParseError)
    expect(run).toThrow(message)
  })

  it('a real output cut anywhere is a ParseError, never another exception', () => {
    const text = sectionOf('flannel-vxlan-node1.out', 'routes4')
    for (const cut of [1, 10, Math.floor(text.length / 3), Math.floor(text.length / 2), text.length - 3]) {
      expect(() => parseRoutes(text.slice(0, cut), 'inet')).toThrow(ParseError)
    }
  })
})
