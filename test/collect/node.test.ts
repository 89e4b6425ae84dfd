import {describe, expect, it} from 'vitest'

import {assembleNodeState, type ProbedPod} from '../../src/collect/node.js'
import {buildProbe} from '../../src/collect/probe.js'
import {splitProbeOutput} from '../../src/collect/sections.js'
import {planLab} from '../../src/lab/topology.js'
import type {LabPlan} from '../../src/lab/types.js'
import {validateSnapshot} from '../../src/model/snapshot.js'
import {probeFixture} from '../helpers/fixtures.js'

const AT = '2024-05-02T10:00:00.000Z'
const planOf = (
  name: string,
  backend: 'flannel-vxlan' | 'flannel-host-gw',
  topology: 'flat' | 'routed' = 'flat',
): LabPlan =>
  planLab({name, nodes: 3, podsPerNode: 2, backend, topology, routeReflectors: 1, ssh: false}, '/nonexistent')

/** Assemble a captured output the way the collector does, with the pods its node had. */
function assemble(file: string, pods: ProbedPod[], node = 'node1') {
  const {split} = probeFixture(file)
  const probe = buildProbe({pods, nonce: 'fixture'})
  return assembleNodeState(node, probe, split, pods, AT)
}

const labPods = (plan: LabPlan, node: string): ProbedPod[] =>
  plan.pods.filter((p) => p.node === node).map((p) => ({name: p.name, namespace: p.namespace, netns: p.netns}))

describe('a flannel vxlan node (captured from a lab)', () => {
  const plan = planOf('col-fx', 'flannel-vxlan')
  const me = plan.nodes[0]!
  const peers = plan.nodes.slice(1)
  const {state, problems} = assemble('flannel-vxlan-node1.out', labPods(plan, 'node1'))

  it('parses every section, with nothing incomplete', () => {
    expect(problems).toEqual([])
    expect(Object.values(state.sections).filter((s) => s.status !== 'ok' && s.status !== 'absent')).toEqual([])
    expect(state.sections['bird-protocols']!.status).toBe('absent')
  })

  it('holds the backend signature: flannel.1, per-peer onlink route, PERMANENT neighbour, self permanent FDB to the peer', () => {
    expect(state.links.find((l) => l.name === 'flannel.1')!.vxlan).toMatchObject({vni: 1, port: 8472, learning: false})
    for (const peer of peers) {
      const vtep = peer.podCIDR.split('/')[0]
      expect(state.routes).toContainEqual(
        expect.objectContaining({dst: peer.podCIDR, gateway: vtep, dev: 'flannel.1', onlink: true}),
      )
      expect(state.neighbours).toContainEqual(
        expect.objectContaining({dst: vtep, dev: 'flannel.1', lladdr: peer.vtepMAC, state: ['PERMANENT']}),
      )
      expect(state.fdb).toContainEqual(
        expect.objectContaining({mac: peer.vtepMAC, dev: 'flannel.1', dst: peer.ip, self: true, permanent: true}),
      )
    }
    expect(state.links.find((l) => l.name === 'cni0')!.kind).toBe('bridge')
  })

  it("has each pod's own view: eth0 with the pod IP, default route via cni0's address", () => {
    expect(state.pods.map((p) => p.name)).toEqual(plan.pods.filter((p) => p.node === 'node1').map((p) => p.name))
    for (const pod of state.pods) {
      const planned = plan.pods.find((p) => p.name === pod.name)!
      expect(pod.netns).toBe(planned.netns)
      expect(pod.addresses).toContainEqual(expect.objectContaining({dev: 'eth0', local: planned.ip}))
      expect(pod.routes).toContainEqual(
        expect.objectContaining({dst: '0.0.0.0/0', gateway: me.podCIDR.replace(/\.0\/24$/, '.1'), dev: 'eth0'}),
      )
      expect(Object.values(pod.sections!).every((s) => s.status === 'ok')).toBe(true)
    }
  })

  it('files, kernel, sysctls', () => {
    expect(state.flannelSubnetEnv!.FLANNEL_NETWORK).toBe(plan.clusterCIDR)
    expect(state.cni!.files.map((f) => f.name)).toEqual(['10-flannel.conflist'])
    expect(state.cni!.plugins).toContain('flannel')
    expect(state.kernel).toMatch(/^\d/)
    expect(state.sysctls['net.ipv4.ip_forward']).toBe('1')
    expect(state.collectedAt).toBe(AT)
  })
})

describe('a flannel host-gw node on the routed topology (captured)', () => {
  const plan = planOf('col-fr', 'flannel-host-gw', 'routed')
  const me = plan.nodes[2]!
  const {state, problems} = assemble('flannel-host-gw-routed-node3.out', labPods(plan, 'node3'), 'node3')

  it('the kernel refused host-gw routes to peers behind the router: none in the snapshot', () => {
    expect(problems).toEqual([])
    const peersElsewhere = plan.nodes.filter((n) => n.subnet !== me.subnet)
    expect(peersElsewhere.length).toBeGreaterThan(0)
    for (const peer of peersElsewhere) expect(state.routes.find((r) => r.dst === peer.podCIDR)).toBeUndefined()
    expect(state.routes).toContainEqual(
      expect.objectContaining({dst: '0.0.0.0/0', gateway: plan.subnets.find((s) => s.cidr === me.subnet)!.gateway}),
    )
  })
})

describe('a Calico IPIP node (hand-written from upstream shapes)', () => {
  const pods: ProbedPod[] = [
    {name: 'web-1', namespace: 'shop', pid: 48100},
    {name: 'gone', namespace: 'shop', pid: 48213},
  ]
  const {state, problems} = assemble('calico-ipip-node1.handmade.out', pods)

  it('BGP sessions and BIRD routes', () => {
    expect(state.bird!.sessions.map((s) => s.bgpState)).toEqual(['Established', 'Active', 'Connect', 'Passive'])
    expect(state.bird!.routes.find((r) => r.prefix === '192.168.12.0/26')).toMatchObject({
      dev: 'tunl0',
      gateway: '10.0.0.12',
    })
  })

  it('iptables as the default (legacy) and the other variant (nft) kept apart', () => {
    expect(state.iptables!.variant).toBe('legacy')
    expect(state.iptablesNft!.variant).toBe('nft')
    expect(state.iptablesLegacy).toBeUndefined()
  })

  it('a pod whose process is gone is an error for that pod only', () => {
    expect(state.pods[1]!.sections).toEqual({
      netns: {
        status: 'error',
        message: expect.stringContaining('nsenter: cannot open /proc/48213/ns/net'),
        cause: 'netns-gone',
      },
    })
    expect(state.pods[1]!.netns).toBe('/proc/48213/ns/net')
    expect(problems).toEqual([expect.stringMatching(/^pod shop\/gone netns: nsenter: cannot open/)])
    expect(state.pods[0]!.routes).toContainEqual(expect.objectContaining({dst: '0.0.0.0/0', gateway: '169.254.1.1'}))
    expect(state.pods[0]!.sections!.routes6!.status).toBe('absent')
  })

  it('absent tools and files are absent, not errors', () => {
    expect(state.sections.nftables).toEqual({status: 'absent', message: 'nft not installed'})
    expect(state.nftables).toBeUndefined()
    expect(state.flannelSubnetEnv).toBeUndefined()
    expect(state.sections['flannel-subnet-env']!.status).toBe('absent')
  })
})

describe('damaged output', () => {
  it('a section that does not parse is an error with the reason; the rest of the node still parses', () => {
    const {text, marker} = probeFixture('flannel-vxlan-node1.out')
    const broken = text.replace(/(@@NETCTL-fixture B links\n)\[\{/, '$1[{{{')
    const probe = buildProbe({nonce: 'fixture'})
    const {state, problems} = assembleNodeState('node1', probe, splitProbeOutput(broken, marker), [], AT)
    expect(state.sections.links).toEqual({
      status: 'error',
      message: expect.stringMatching(/^links: invalid JSON/),
      cause: 'tool-too-old',
    })
    expect(state.links).toEqual([])
    expect(state.routes.length).toBeGreaterThan(0)
    expect(state.sections.routes4!.status).toBe('ok')
    expect(problems).toEqual([expect.stringMatching(/^links: invalid JSON/)])
  })

  it('output cut short: sections never reached are truncated, those before are kept', () => {
    const plan = planOf('col-fx', 'flannel-vxlan')
    const pods = labPods(plan, 'node1')
    const {text, marker} = probeFixture('flannel-vxlan-node1.out')
    const cut = text.slice(0, text.indexOf(`${marker} B sysctls`) + 40)
    const {state, problems} = assembleNodeState(
      'node1',
      buildProbe({pods, nonce: 'fixture'}),
      splitProbeOutput(cut, marker),
      pods,
      AT,
    )
    expect(state.sections.fdb!.status).toBe('ok')
    expect(state.fdb.length).toBeGreaterThan(0)
    expect(state.sections.sysctls!.status).toBe('truncated')
    expect(state.sections.processes).toEqual({
      status: 'truncated',
      message: expect.stringMatching(/ended before/),
      cause: 'truncated',
    })
    expect(state.pods[0]!.sections!.netns!.status).toBe('truncated')
    expect(problems.length).toBeGreaterThan(5)
  })
})

const calicoPlan = (name: string, backend: 'calico-bgp' | 'calico-rr' | 'calico-vxlan', nodes = 3): LabPlan =>
  planLab({name, nodes, podsPerNode: 2, backend, topology: 'flat', routeReflectors: 1, ssh: false}, '/nonexistent')

describe('a Calico BGP node (captured from a lab: BIRD per node, node-to-node mesh)', () => {
  const plan = calicoPlan('col-cb', 'calico-bgp')
  const me = plan.nodes[0]!
  const {state, problems} = assemble('calico-bgp-node1.out', labPods(plan, 'node1'))

  it('an Established mesh session to every other node', () => {
    expect(problems).toEqual([])
    const peers = plan.nodes.filter((n) => n !== me)
    expect(state.bird!.sessions.map((s) => [s.neighborAddress, s.bgpState, s.state])).toEqual(
      peers.map((p) => [p.ip, 'Established', 'up']),
    )
    expect(state.bird!.sessions.every((s) => s.localAs === plan.asNumber && s.neighborAs === plan.asNumber)).toBe(true)
  })

  it('routes: peer blocks via the peer proto bird, own block blackholed, a /32 per pod on its cali veth', () => {
    for (const peer of plan.nodes.filter((n) => n !== me)) {
      expect(state.routes).toContainEqual(
        expect.objectContaining({dst: peer.podCIDR, gateway: peer.ip, dev: 'eth0', protocol: 'bird'}),
      )
      expect(state.bird!.routes).toContainEqual(
        expect.objectContaining({prefix: peer.podCIDR, gateway: peer.ip, primary: true}),
      )
    }
    expect(state.routes).toContainEqual(expect.objectContaining({dst: me.podCIDR, type: 'blackhole'}))
    for (const pod of plan.pods.filter((p) => p.node === me.name)) {
      expect(state.routes).toContainEqual(
        expect.objectContaining({dst: `${pod.ip}/32`, dev: pod.hostVeth, scope: 'link'}),
      )
      expect(state.sysctls[`net.ipv4.conf.${pod.hostVeth}.proxy_arp`]).toBe('1')
      expect(state.links.find((l) => l.name === pod.hostVeth)).toMatchObject({kind: 'veth', mac: 'ee:ee:ee:ee:ee:ee'})
    }
    expect(state.links.some((l) => l.kind === 'bridge')).toBe(false)
  })

  it('pods route through 169.254.1.1; BIRD is the one daemon', () => {
    for (const pod of state.pods)
      expect(pod.routes).toContainEqual(
        expect.objectContaining({dst: '0.0.0.0/0', gateway: '169.254.1.1', dev: 'eth0'}),
      )
    expect(state.processes.map((p) => p.name)).toEqual(['bird'])
    expect(state.cni!.files.map((f) => f.name)).toEqual(['10-calico.conflist'])
    expect(state.sections['flannel-subnet-env']!.status).toBe('absent')
  })
})

describe('Calico with a route reflector (captured)', () => {
  const plan = calicoPlan('col-cr', 'calico-rr', 4)
  const rr = plan.nodes.find((n) => n.routeReflector)!
  const clients = plan.nodes.filter((n) => !n.routeReflector)

  it('the reflector peers with every client and reflects for it', () => {
    const {state, problems} = assemble('calico-rr-reflector-node1.out', labPods(plan, rr.name), rr.name)
    expect(problems).toEqual([])
    expect(state.bird!.sessions.map((s) => s.neighborAddress)).toEqual(clients.map((c) => c.ip))
    for (const s of state.bird!.sessions) {
      expect(s).toMatchObject({bgpState: 'Established', sourceAddress: rr.ip, neighborId: s.neighborAddress})
      expect(s.session).toMatch(/\broute-reflector\b/)
    }
  })

  it('a client peers only with the reflector and learns the other clients through it', () => {
    const me = plan.nodes[2]!
    const {state} = assemble('calico-rr-client-node3.out', labPods(plan, me.name), me.name)
    expect(state.bird!.sessions.map((s) => [s.neighborAddress, s.bgpState])).toEqual([[rr.ip, 'Established']])
    expect(state.bird!.sessions[0]!.session).not.toMatch(/route-reflector/)
    for (const other of plan.nodes.filter((n) => n !== me && n !== rr)) {
      expect(state.bird!.routes).toContainEqual(
        expect.objectContaining({
          prefix: other.podCIDR,
          gateway: other.ip,
          protocol: `Node_${rr.ip.replace(/\./g, '_')}`,
        }),
      )
      expect(state.routes).toContainEqual(
        expect.objectContaining({dst: other.podCIDR, gateway: other.ip, protocol: 'bird'}),
      )
    }
  })
})

describe('a Calico VXLAN node (captured)', () => {
  const plan = calicoPlan('col-cv', 'calico-vxlan')
  const me = plan.nodes[1]!
  const {state, problems} = assemble('calico-vxlan-node2.out', labPods(plan, me.name), me.name)

  it('vxlan.calico VNI 4096 on UDP 4789, and per peer an onlink route (proto 80), a PERMANENT neighbour and an FDB entry', () => {
    expect(problems).toEqual([])
    const vtep = state.links.find((l) => l.name === 'vxlan.calico')!
    expect(vtep).toMatchObject({
      mac: me.vtepMAC,
      mtu: plan.underlayMTU - 50,
      vxlan: {vni: 4096, port: 4789, learning: false, local: me.ip},
    })
    for (const peer of plan.nodes.filter((n) => n !== me)) {
      expect(state.routes).toContainEqual(
        expect.objectContaining({
          dst: peer.podCIDR,
          gateway: peer.tunnelIP,
          dev: 'vxlan.calico',
          onlink: true,
          protocol: '80',
        }),
      )
      expect(state.neighbours).toContainEqual(
        expect.objectContaining({dst: peer.tunnelIP, lladdr: peer.vtepMAC, state: ['PERMANENT']}),
      )
      expect(state.fdb).toContainEqual(
        expect.objectContaining({mac: peer.vtepMAC, dev: 'vxlan.calico', dst: peer.ip, self: true, permanent: true}),
      )
    }
    expect(Object.keys(state.offloads!)).toEqual(['vxlan.calico'])
  })
})

describe('a flannel udp node (captured)', () => {
  const plan = planLab(
    {
      name: 'col-fu',
      nodes: 3,
      podsPerNode: 2,
      backend: 'flannel-udp',
      topology: 'flat',
      routeReflectors: 1,
      ssh: false,
    },
    '/nonexistent',
  )
  const {state, problems} = assemble('flannel-udp-node1.out', labPods(plan, 'node1'))

  it('flannel0 is a TUN without packet info, the cluster route goes to it, and the forwarder runs', () => {
    expect(problems).toEqual([])
    expect(state.links.find((l) => l.name === 'flannel0')).toMatchObject({kind: 'tun', tun: {type: 'tun', pi: false}})
    expect(state.routes).toContainEqual(expect.objectContaining({dst: plan.clusterCIDR, dev: 'flannel0'}))
    expect(state.processes).toContainEqual(
      expect.objectContaining({
        name: expect.stringMatching(/^netctl-udp-forw/),
        args: expect.stringMatching(/^netctl-udp-forwarder /),
      }),
    )
    expect(Object.keys(state.offloads!)).toEqual(['flannel0'])
  })
})

describe('a calico vxlan node with netfilter state (captured from a lab)', () => {
  const pods: ProbedPod[] = [1, 2].map((i) => ({
    name: `pod-node1-${i}`,
    namespace: 'default',
    netns: `nfcap.node1.pod${i}`,
  }))
  const {state, problems} = assemble('calico-vxlan-netfilter-node1.out', pods)

  it('reads nftables parsed, ipsets and conntrack beside both iptables variants', () => {
    expect(problems).toEqual([])
    for (const s of ['nftables', 'ipset', 'conntrack-counters', 'conntrack', 'iptables', 'iptables-legacy'])
      expect(state.sections[s]?.status, s).toBe('ok')
    expect(state.nft!.tables.map((t) => t.name)).toContain('kube-proxy')
    expect(state.nftables).toBeDefined()
    expect(state.ipsets!.find((s) => s.name === 'cali40all-vxlan-net')!.members.map((m) => m.value)).toEqual([
      '172.31.0.11',
      '172.31.0.12',
    ])
    expect(state.conntrack!.max).toBe(262144)
    expect(state.conntrack!.count).toBeGreaterThan(0)
    expect(state.conntrack!.entries.some((e) => e.orig.dport === 4789)).toBe(true)
  })

  it('is valid in a snapshot (schema)', () => {
    const snapshot = {
      schemaVersion: 1,
      generator: {name: 'netctl', version: '0'},
      startedAt: AT,
      finishedAt: AT,
      cluster: {source: 'lab', name: 'nfcap', backend: 'calico-vxlan', clusterCIDR: '172.20.0.0/16'},
      nodes: [],
      pods: [],
      nodeStates: {node1: state},
      errors: [],
    }
    expect(() => validateSnapshot(JSON.parse(JSON.stringify(snapshot)))).not.toThrow()
    const bad = JSON.parse(JSON.stringify(snapshot))
    bad.nodeStates.node1.nft.tables[0].chains[0].prio = 'dstnat'
    expect(() => validateSnapshot(bad)).toThrow(/prio/)
  })

  it('an older probe format lacks the new sections without being cut short', () => {
    const old = assemble('flannel-vxlan-node1.out', [])
    expect(old.state.sections.ipset).toEqual({status: 'absent', message: 'not read by probe format 1'})
    expect(old.problems.filter((p) => /ipset|conntrack/.test(p))).toEqual([])
  })
})
