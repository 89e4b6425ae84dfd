import {describe, expect, it} from 'vitest'

import {broken, codes, findings, node, only} from './helpers.js'

const link = (s: any, n: string, name: string) => node(s, n).links.find((l) => l.name === name)!

describe('MTU', () => {
  it('MTU_EXCEEDS_ENCAP: flannel.1 at the uplink MTU leaves no room for 50 bytes of vxlan', () => {
    const s = broken('flannel-vxlan', (s) => {
      link(s, 'node1', 'flannel.1').mtu = 1500
    })
    const f = findings(s, 'MTU_EXCEEDS_ENCAP')
    expect(f.map((x) => [x.node, x.subject])).toEqual([['node1', 'flannel.1']])
    expect(f[0]!.evidence[0]).toMatch(/^\d+: flannel\.1: .* mtu 1500 /)
    expect(f[0]!.evidence[1]).toMatch(/^\d+: eth0: .* mtu 1500 /)
    expect(f[0]!.fix).toContain('ip link set flannel.1 mtu 1450')
    // subnet.env still says 1450: that disagreement is reported too
    expect(codes(s)).toEqual(['MTU_EXCEEDS_ENCAP', 'SUBNET_ENV_MISMATCH'])
  })

  it("MTU_EXCEEDS_ENCAP: a pod whose eth0 is 1500 on vxlan, quoted from the pod's namespace", () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node2').pods[0]!.links.find((l) => l.name === 'eth0')!.mtu = 1500
    })
    const f = only(s, 'MTU_EXCEEDS_ENCAP')
    const pod = node(s, 'node2').pods[0]!
    expect(f).toMatchObject({node: 'node2', subject: `pod default/${pod.name} eth0`})
    expect(f.evidence[0]).toMatch(new RegExp(`^${pod.netns.replace(/\./g, '\\.')}: \\d+: eth0: .* mtu 1500 `))
  })

  it('MTU_MISMATCH: one node sized its tunnel differently from the others', () => {
    const s = broken('calico-vxlan', (s) => {
      link(s, 'node3', 'vxlan.calico').mtu = 1400
    })
    const tunnel = findings(s, 'MTU_MISMATCH').find((f) => f.subject === 'vxlan.calico')!
    expect(tunnel).toMatchObject({severity: 'warning', node: 'node3'})
    expect(tunnel.message).toContain('the other nodes use 1450')
    // node3's pods still send 1450 into a 1400 tunnel
    expect(
      findings(s, 'MTU_MISMATCH')
        .filter((f) => f.subject.startsWith('pod '))
        .map((f) => f.node),
    ).toEqual(['node3', 'node3'])
  })

  it('MTU_MISMATCH: a pod above the uplink MTU without a tunnel (Calico BGP)', () => {
    const s = broken('calico-bgp', (s) => {
      node(s, 'node1').pods[1]!.links.find((l) => l.name === 'eth0')!.mtu = 9000
    })
    const f = only(s, 'MTU_MISMATCH')
    expect(f.subject).toBe(`pod default/${node(s, 'node1').pods[1]!.name} eth0`)
    expect(f.fix).toContain('ip link set eth0 mtu 1500')
  })
})

describe('host', () => {
  it('IP_FORWARD_DISABLED: ip_forward 0 (which also zeroes every interface) is one finding', () => {
    const s = broken('flannel-vxlan', (s) => {
      const sys = node(s, 'node2').sysctls
      for (const k of Object.keys(sys)) if (k.endsWith('.forwarding') && k.startsWith('net.ipv4')) sys[k] = '0'
      sys['net.ipv4.ip_forward'] = '0'
    })
    const f = only(s, 'IP_FORWARD_DISABLED')
    expect(f).toMatchObject({node: 'node2', subject: 'net.ipv4.ip_forward', evidence: ['net.ipv4.ip_forward = 0']})
    expect(f.fix.split('\n')[0]).toBe('sysctl -w net.ipv4.ip_forward=1')
    expect(codes(s)).toEqual(['IP_FORWARD_DISABLED'])
  })

  it("IP_FORWARD_DISABLED: forwarding off on flannel.1 alone, its key as sysctl writes it ('.' → '/')", () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').sysctls['net.ipv4.conf.flannel/1.forwarding'] = '0'
    })
    expect(only(s, 'IP_FORWARD_DISABLED').evidence).toEqual([
      'net.ipv4.conf.flannel/1.forwarding = 0',
      'net.ipv4.ip_forward = 1',
    ])
  })

  it("RP_FILTER_ASYMMETRIC: strict rp_filter where node2's pods arrive (flannel.1) but the route back leaves by eth0", () => {
    const s = broken('flannel-vxlan', (s) => {
      const n = node(s, 'node1')
      n.sysctls['net.ipv4.conf.all.rp_filter'] = '1'
      Object.assign(
        n.routes.find((r) => r.dst === '172.20.2.0/24')!,
        {gateway: '172.31.0.12', dev: 'eth0', onlink: false, flags: []},
      )
    })
    const f = only(s, 'RP_FILTER_ASYMMETRIC')
    expect(f).toMatchObject({node: 'node1', subject: 'flannel.1 rp_filter'})
    expect(f.evidence).toEqual([
      'net.ipv4.conf.all.rp_filter = 1',
      'net.ipv4.conf.flannel/1.rp_filter = 0',
      '172.20.2.0/24 via 172.31.0.12 dev eth0',
    ])
    expect(f.fix).toContain('sysctl -w net/ipv4/conf/flannel.1/rp_filter=2')
    expect(codes(s)).toEqual(['ROUTE_WRONG_NEXTHOP', 'RP_FILTER_ASYMMETRIC'])
  })

  it('loose rp_filter (2) on the same asymmetric path is no finding', () => {
    const s = broken('flannel-vxlan', (s) => {
      const n = node(s, 'node1')
      n.sysctls['net.ipv4.conf.flannel/1.rp_filter'] = '2'
      Object.assign(
        n.routes.find((r) => r.dst === '172.20.2.0/24')!,
        {gateway: '172.31.0.12', dev: 'eth0', onlink: false, flags: []},
      )
    })
    expect(codes(s)).toEqual(['ROUTE_WRONG_NEXTHOP'])
  })

  it('BR_NETFILTER_OFF: info for plain flannel, absent module quoted as sysctl says it; not where pods have no bridge (Calico, Canal)', () => {
    const off = broken('flannel-vxlan', (s) => {
      node(s, 'node3').sysctls['net.bridge.bridge-nf-call-iptables'] = '0'
    })
    expect(only(off, 'BR_NETFILTER_OFF')).toMatchObject({
      severity: 'info',
      node: 'node3',
      evidence: ['net.bridge.bridge-nf-call-iptables = 0'],
    })
    const absent = broken('flannel-vxlan', (s) => {
      delete node(s, 'node3').sysctls['net.bridge.bridge-nf-call-iptables']
    })
    expect(only(absent, 'BR_NETFILTER_OFF').evidence).toEqual([
      'sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables: No such file or directory',
    ])
    // Calico has no pod bridge, nor has Canal (the calico CNI plugin's cali veths): the setting does not matter there
    const calico = broken('calico-bgp', (s) => {
      node(s, 'node1').sysctls['net.bridge.bridge-nf-call-iptables'] = '0'
    })
    expect(codes(calico)).toEqual([])
    const canal = broken('flannel-vxlan', (s) => {
      s.cluster.backend = 'canal'
      node(s, 'node3').sysctls['net.bridge.bridge-nf-call-iptables'] = '0'
    })
    expect(codes(canal)).not.toContain('BR_NETFILTER_OFF')
  })

  it('LINK_DOWN: a pod veth set down, an uplink without carrier, the pod bridge set down', () => {
    const s = broken('flannel-vxlan', (s) => {
      const veth = node(s, 'node1').links.find((l) => l.master === 'cni0')!
      Object.assign(veth, {adminUp: false, operstate: 'DOWN', flags: ['BROADCAST', 'MULTICAST']})
      Object.assign(link(s, 'node2', 'eth0'), {
        operstate: 'DOWN',
        flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
      })
      Object.assign(link(s, 'node3', 'cni0'), {adminUp: false, operstate: 'DOWN', flags: ['BROADCAST', 'MULTICAST']})
    })
    const down = findings(s, 'LINK_DOWN')
    const veth = node(s, 'node1').links.find((l) => l.master === 'cni0')!.name
    expect(down.map((f) => [f.node, f.subject])).toEqual([
      ['node1', veth],
      ['node2', 'eth0'],
      ['node3', 'cni0'],
    ])
    expect(down[1]!.message).toContain('has no carrier')
    expect(down[0]!.fix).toBe(`ip link set ${veth} up`)
    // set up already: the far end is down, and `ip link set eth0 up` would change nothing
    expect(down[1]!.fix).not.toContain('ip link set eth0 up')
    expect(down[1]!.fix).toContain('eth0 is set up but has no carrier: its far end is down')
    expect(down[1]!.fix).toContain('ethtool eth0')
  })

  it('an empty bridge without carrier is not down', () => {
    const s = broken('flannel-host-gw', (s) => {
      Object.assign(link(s, 'node1', 'cni0'), {
        operstate: 'DOWN',
        flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'],
      })
    })
    expect(codes(s)).toEqual([])
  })
})

describe('host: pods', () => {
  it("LINK_DOWN: a pod's own eth0 set down is quoted from the pod's namespace", () => {
    const s = broken('calico-bgp', (s) => {
      Object.assign(
        node(s, 'node3').pods[0]!.links.find((l) => l.name === 'eth0')!,
        {adminUp: false, operstate: 'DOWN', flags: ['BROADCAST', 'MULTICAST']},
      )
    })
    const pod = node(s, 'node3').pods[0]!
    const f = only(s, 'LINK_DOWN')
    expect(f).toMatchObject({node: 'node3', subject: `pod default/${pod.name} eth0`})
    expect(f.evidence[0]!.startsWith(`${pod.netns}: `)).toBe(true)
    expect(f.message).toContain(`inside ${pod.netns}`)
  })
})
