import ipaddr from 'ipaddr.js'
import {describe, expect, it} from 'vitest'

import {cidrContainsAddress as cidrContains} from '../../src/analyze/ip.js'
import {UsageError} from '../../src/errors.js'
import {NsScript} from '../../src/lab/script.js'
import {l2Adjacent, planLab} from '../../src/lab/topology.js'
import type {LabOptions} from '../../src/lab/types.js'

const base: LabOptions = {
  name: 'demo',
  nodes: 3,
  podsPerNode: 2,
  backend: 'flannel-vxlan',
  topology: 'flat',
  routeReflectors: 1,
  ssh: false,
}

describe('planLab', () => {
  it('gives every node a distinct IP on the underlay and a distinct podCIDR inside the cluster CIDR', () => {
    const plan = planLab({...base, nodes: 50}, '/tmp/x')
    const ips = new Set(plan.nodes.map((n) => n.ip))
    const cidrs = new Set(plan.nodes.map((n) => n.podCIDR))
    expect(ips.size).toBe(50)
    expect(cidrs.size).toBe(50)
    for (const n of plan.nodes) {
      expect(cidrContains(n.subnet, n.ip)).toBe(true)
      expect(cidrContains(plan.clusterCIDR, n.podCIDR.split('/')[0]!)).toBe(true)
      // never the machine's own networks
      expect(cidrContains('10.0.0.0/8', n.ip)).toBe(false)
      expect(cidrContains('192.0.2.0/24', n.ip)).toBe(false)
    }
  })

  it('puts every pod inside its node podCIDR, never on .0 (VTEP) or .1 (cni0)', () => {
    const plan = planLab(base, '/tmp/x')
    for (const pod of plan.pods) {
      const node = plan.nodes.find((n) => n.name === pod.node)!
      expect(cidrContains(node.podCIDR, pod.ip)).toBe(true)
      const last = Number(pod.ip.split('.')[3])
      expect(last).toBeGreaterThan(1)
    }
    expect(new Set(plan.pods.map((p) => p.ip)).size).toBe(plan.pods.length)
  })

  it('names every namespace after the lab, so labs never collide', () => {
    const a = planLab({...base, name: 'a'}, '/tmp/x')
    const ab = planLab({...base, name: 'a-b'}, '/tmp/x')
    const nsA = [a.fabricNetns, ...a.nodes.map((n) => n.netns), ...a.pods.map((p) => p.netns)]
    const nsAB = [ab.fabricNetns, ...ab.nodes.map((n) => n.netns), ...ab.pods.map((p) => p.netns)]
    for (const ns of nsA) expect(ns.startsWith('a.')).toBe(true)
    // lab "a" must not claim lab "a-b"'s namespaces by prefix
    for (const ns of nsAB) expect(ns.startsWith('a.')).toBe(false)
  })

  it('uses valid, unique, locally administered unicast MACs', () => {
    const plan = planLab({...base, nodes: 50}, '/tmp/x')
    const macs = plan.nodes.flatMap((n) => [n.vtepMAC, n.uplinkMAC])
    expect(new Set(macs).size).toBe(macs.length)
    for (const mac of macs) {
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
      const first = Number.parseInt(mac.slice(0, 2), 16)
      expect(first & 1).toBe(0)
      expect(first & 2).toBe(2)
    }
  })

  it('splits the routed topology over two subnets with a gateway each', () => {
    const plan = planLab({...base, nodes: 5, topology: 'routed'}, '/tmp/x')
    expect(plan.routerNetns).toBe('demo.router')
    expect(plan.subnets).toHaveLength(2)
    const onA = plan.nodes.filter((n) => n.subnet === plan.subnets[0]!.cidr)
    const onB = plan.nodes.filter((n) => n.subnet === plan.subnets[1]!.cidr)
    expect(onA.length + onB.length).toBe(5)
    expect(onA.length).toBeGreaterThan(0)
    expect(onB.length).toBeGreaterThan(0)
    expect(l2Adjacent(onA[0]!, onB[0]!)).toBe(false)
    for (const s of plan.subnets) expect(cidrContains(s.cidr, s.gateway!)).toBe(true)
  })

  it('gives Calico /26 blocks and cali veths, flannel /24s and veths', () => {
    const cal = planLab({...base, backend: 'calico-bgp'}, '/tmp/x')
    expect(cal.nodes.every((n) => n.podCIDR.endsWith('/26'))).toBe(true)
    expect(cal.pods.every((p) => /^cali[0-9a-f]{11}$/.test(p.hostVeth))).toBe(true)
    const fl = planLab(base, '/tmp/x')
    expect(fl.nodes.every((n) => n.podCIDR.endsWith('/24'))).toBe(true)
    expect(fl.pods.every((p) => /^veth[0-9a-f]{8}$/.test(p.hostVeth) && p.hostVeth.length <= 15)).toBe(true)
  })

  it('marks the first K nodes as route reflectors for calico-rr', () => {
    const plan = planLab({...base, backend: 'calico-rr', nodes: 5, routeReflectors: 2}, '/tmp/x')
    expect(plan.nodes.filter((n) => n.routeReflector).map((n) => n.name)).toEqual(['node1', 'node2'])
  })

  it('refuses bad options with a usage error naming the option', () => {
    const bad: Array<[Partial<LabOptions>, RegExp]> = [
      [{name: 'Upper'}, /invalid lab name/],
      [{name: 'has.dot'}, /invalid lab name/],
      [{name: "x'; rm -rf /"}, /invalid lab name/],
      [{nodes: 1}, /--nodes/],
      [{nodes: 51}, /--nodes/],
      [{backend: 'weave' as never}, /unknown backend/],
      [{backend: 'calico-rr', nodes: 3, routeReflectors: 3}, /--route-reflectors/],
    ]
    for (const [o, re] of bad) {
      expect(() => planLab({...base, ...o}, '/tmp/x')).toThrow(UsageError)
      expect(() => planLab({...base, ...o}, '/tmp/x')).toThrow(re)
    }
  })

  it('keeps pod IPs valid IPv4 addresses', () => {
    const plan = planLab({...base, nodes: 50, podsPerNode: 20}, '/tmp/x')
    for (const p of plan.pods) expect(ipaddr.IPv4.isValidFourPartDecimal(p.ip)).toBe(true)
  })
})

describe('NsScript', () => {
  it('batches ip commands and quotes plain commands', () => {
    const s = new NsScript()
      .ip('link', 'set', 'lo', 'up')
      .ip('link', 'set', 'eth0', 'up')
      .cmd('ip', '-n', 'lab.node1 pod', 'link')
      .toString()
    expect(s).toContain("ip -batch - <<'NETCTL_EOF'\nlink set lo up\nlink set eth0 up\nNETCTL_EOF")
    expect(s).toContain("ip -n 'lab.node1 pod' link")
  })

  it('refuses a token that would need quoting inside an ip batch', () => {
    expect(() => new NsScript().ip('link', 'set', 'a b', 'up')).toThrow(/unsafe token/)
    expect(() => new NsScript().bridge('fdb', 'add', '$(id)')).toThrow(/unsafe token/)
  })
})
