import {describe, expect, it} from 'vitest'

import {broken, codes, findings, node, only} from './helpers.js'

const FLANNEL_CONFLIST = (s: any) => node(s, 'node1').cni!.files[0]!.content

describe('addressing', () => {
  it('PODCIDR_MISSING: flannel needs spec.podCIDR; Calico (its own IPAM) does not', () => {
    const s = broken('flannel-host-gw', (s) => {
      s.nodes[2]!.podCIDRs = []
    })
    const f = findings(s, 'PODCIDR_MISSING')
    expect(f.map((x) => [x.node, x.evidence])).toEqual([['node3', ['node3: spec.podCIDR: ""']]])
    const calico = broken('calico-bgp', (s) => {
      s.nodes[2]!.podCIDRs = []
    })
    expect(codes(calico)).toEqual([])
  })

  it("PODCIDR_DUPLICATE: node3 given node2's subnet (cluster-wide, both named)", () => {
    const s = broken('flannel-host-gw', (s) => {
      s.nodes[2]!.podCIDRs = ['172.20.2.0/24']
    })
    const f = only(s, 'PODCIDR_DUPLICATE')
    expect(f.node).toBeUndefined()
    expect(f).toMatchObject({
      subject: '172.20.2.0/24',
      evidence: ['node2: spec.podCIDR: 172.20.2.0/24', 'node3: spec.podCIDR: 172.20.2.0/24'],
    })
    expect(f.fix).toContain('kubectl delete node node3')
  })

  it("PODCIDR_OVERLAP: a /23 over a peer's /24, and a pod network that covers the nodes themselves", () => {
    const s = broken('flannel-host-gw', (s) => {
      s.nodes[0]!.podCIDRs = ['172.20.2.0/23']
    })
    // a /23 at 172.20.2.0 spans both node2's and node3's /24
    const over = findings(s, 'PODCIDR_OVERLAP')
    // one finding for the /23, naming both subnets inside it
    expect(over.map((f) => f.subject)).toEqual(['172.20.2.0/23 / 2 subnets'])
    expect(over[0]!.evidence).toEqual([
      'node1: spec.podCIDR: 172.20.2.0/23',
      'node2: spec.podCIDR: 172.20.2.0/24',
      'node3: spec.podCIDR: 172.20.3.0/24',
    ])
    expect(over[0]!.node).toBeUndefined()
    expect(over[0]!.fix).toContain('kubectl drain node1')
    const one = findings(
      broken('flannel-host-gw', (s) => {
        s.nodes[0]!.podCIDRs = ['172.20.2.0/25']
      }),
      'PODCIDR_OVERLAP',
    )
    expect(one.map((f) => [f.subject, f.message])).toEqual([
      [
        '172.20.2.0/24 / 172.20.2.0/25',
        "node2's 172.20.2.0/24 and node1's 172.20.2.0/25 overlap: the longer prefix wins and some pods of the other become unreachable",
      ],
    ])
    const wide = broken('flannel-host-gw', (s) => {
      s.cluster.clusterCIDR = '172.16.0.0/12'
      for (const n of Object.values(s.nodeStates)) delete n.flannelSubnetEnv!.FLANNEL_NETWORK
    })
    expect(findings(wide, 'PODCIDR_OVERLAP').map((f) => f.subject)).toEqual([
      '172.16.0.0/12 / 172.31.0.11',
      '172.16.0.0/12 / 172.31.0.12',
      '172.16.0.0/12 / 172.31.0.13',
    ])
  })

  it("PODCIDR_OUTSIDE_NETWORK: a podCIDR outside flannel's FLANNEL_NETWORK", () => {
    const s = broken('flannel-host-gw', (s) => {
      s.nodes[1]!.podCIDRs = ['10.99.2.0/24']
      node(s, 'node2').flannelSubnetEnv!.FLANNEL_SUBNET = '10.99.2.1/24'
    })
    const f = only(s, 'PODCIDR_OUTSIDE_NETWORK')
    expect(f).toMatchObject({
      node: 'node2',
      subject: '10.99.2.0/24',
      evidence: ['node2: spec.podCIDR: 10.99.2.0/24', 'FLANNEL_NETWORK=172.20.0.0/16'],
    })
  })

  it("SUBNET_ENV_MISMATCH: FLANNEL_SUBNET from an old podCIDR, FLANNEL_MTU not the tunnel's", () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').flannelSubnetEnv!.FLANNEL_SUBNET = '172.20.7.1/24'
      node(s, 'node3').flannelSubnetEnv!.FLANNEL_MTU = '1500'
    })
    const f = findings(s, 'SUBNET_ENV_MISMATCH')
    expect(f.map((x) => [x.node, x.subject, x.evidence[0]])).toEqual([
      ['node1', 'FLANNEL_SUBNET', 'FLANNEL_SUBNET=172.20.7.1/24'],
      ['node3', 'FLANNEL_MTU', 'FLANNEL_MTU=1500'],
    ])
    expect(f[1]!.evidence[1]).toMatch(/^\d+: flannel\.1: .* mtu 1450 /)
  })

  it('BRIDGE_ADDR_MISMATCH: cni0 keeps the gateway of an old podCIDR', () => {
    const s = broken('flannel-vxlan', (s) => {
      Object.assign(
        node(s, 'node2').addresses.find((a) => a.dev === 'cni0' && a.family === 'inet')!,
        {local: '172.20.8.1'},
      )
    })
    const f = only(s, 'BRIDGE_ADDR_MISMATCH')
    expect(f.node).toBe('node2')
    expect(f.evidence).toEqual([
      `${node(s, 'node2').links.find((l) => l.name === 'cni0')!.ifindex}: cni0    inet 172.20.8.1/24 scope global cni0`,
    ])
    expect(f.fix).toContain('ip addr add 172.20.2.1/24 dev cni0')
  })

  it('NODE_IP_MISMATCH: an InternalIP that is not on the node; a flannel public-ip the vxlan device does not send from', () => {
    const s = broken('flannel-vxlan', (s) => {
      s.nodes[2]!.internalIP = '172.31.0.99'
      node(s, 'node1').links.find((l) => l.name === 'flannel.1')!.vxlan!.local = '172.31.0.111'
    })
    const f = findings(s, 'NODE_IP_MISMATCH')
    expect(f.map((x) => [x.node, x.subject])).toEqual([
      ['node1', 'flannel.1 local 172.31.0.111'],
      ['node3', 'InternalIP 172.31.0.99'],
    ])
    expect(f[1]!.evidence[0]).toBe('node3: InternalIP: 172.31.0.99')
    expect(f[1]!.evidence).toContainEqual(
      expect.stringMatching(/^\d+: eth0 {4}inet 172\.31\.0\.13\/24 scope global eth0$/),
    )
  })
})

describe('CNI', () => {
  it("CNI_CONFIG_CONFLICT: a Calico config sorts before flannel's and wins (error); it names the file to remove", () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node2').cni!.files.unshift({
        name: '05-calico.conflist',
        content: '{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[{"type":"calico"}]}',
      })
    })
    const f = only(s, 'CNI_CONFIG_CONFLICT')
    const dir = node(s, 'node2').cni!.confDir
    expect(f).toMatchObject({severity: 'error', node: 'node2', subject: dir})
    expect(f.message).toContain("the runtime uses 05-calico.conflist (calico), not flannel-vxlan's")
    expect(f.evidence).toEqual([
      `ls ${dir}`,
      '05-calico.conflist: "type": "calico"',
      '10-flannel.conflist: "type": "flannel"',
    ])
    expect(f.fix).toContain(`rm ${dir}/05-calico.conflist`)
    // the same leftover sorting after flannel's: flannel still wins, a warning
    const later = broken('flannel-vxlan', (s) => {
      node(s, 'node2').cni!.files.push({name: '99-loopback.conf', content: '{"cniVersion":"0.3.1","type":"loopback"}'})
    })
    expect(only(later, 'CNI_CONFIG_CONFLICT')).toMatchObject({severity: 'warning'})
    expect(only(later, 'CNI_CONFIG_CONFLICT').fix).toContain('/99-loopback.conf')
  })

  it('files the runtime ignores (not .conf/.conflist/.json) are no conflict', () => {
    const s = broken('calico-bgp', (s) => {
      node(s, 'node1').cni!.files.push({name: 'calico-kubeconfig', content: 'apiVersion: v1'})
    })
    expect(codes(s)).toEqual([])
  })

  it('CNI_PLUGIN_MISSING: portmap named by the conflist, and bridge that flannel delegates to', () => {
    const s = broken('flannel-vxlan', (s) => {
      node(s, 'node1').cni!.plugins = node(s, 'node1').cni!.plugins.filter((p) => p !== 'portmap' && p !== 'bridge')
    })
    expect(FLANNEL_CONFLIST(s)).toContain('"type": "portmap"')
    const f = findings(s, 'CNI_PLUGIN_MISSING')
    expect(f.map((x) => [x.node, x.subject])).toEqual([
      ['node1', 'bridge'],
      ['node1', 'portmap'],
    ])
    expect(f[0]!.evidence[0]).toBe('10-flannel.conflist: "type": "flannel" (delegates to bridge)')
    expect(f[1]!.evidence[0]).toBe('10-flannel.conflist: "type": "portmap"')
    expect(f[1]!.evidence[2]).toBe('flannel  host-local  loopback')
  })

  it('CNI_PLUGIN_MISSING: calico-ipam for a Calico node', () => {
    const s = broken('calico-bgp', (s) => {
      node(s, 'node3').cni!.plugins = node(s, 'node3').cni!.plugins.filter((p) => p !== 'calico-ipam')
    })
    expect(only(s, 'CNI_PLUGIN_MISSING')).toMatchObject({
      node: 'node3',
      subject: 'calico-ipam',
      evidence: expect.arrayContaining(['10-calico.conflist: "ipam": {"type": "calico-ipam"}']),
    })
  })
})
