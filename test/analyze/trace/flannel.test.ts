/**
 * The walk over recorded flannel lab snapshots (vxlan, host-gw, udp): hop
 * by hop, with the state behind each hop, both directions.
 */
import {describe, expect, it} from 'vitest'

import {actions, network, node, pod, schemaErrors, snapshotFixture, trace} from './fixtures.js'

const vtepMAC = (annotations: Record<string, string>): string =>
  JSON.parse(annotations['flannel.alpha.coreos.com/backend-data']!).VtepMAC

describe('flannel vxlan (a recorded 3-node lab)', () => {
  const snap = snapshotFixture('flannel-vxlan-lab')
  const [n1, n2] = [node(snap, 'node1'), node(snap, 'node2')]
  const [a, b] = [pod(snap, 'pod-node1-1'), pod(snap, 'pod-node2-1')]

  it('walks a pod on node1 to a pod on node2 through cni0, flannel.1, the underlay and back', () => {
    const t = trace(snap, a.name, b.name)
    expect(t.disposition).toBe('DELIVERED')
    expect(actions(t)).toEqual([
      'route',
      'veth',
      'bridge',
      'route',
      'forward',
      'encap',
      'route',
      'underlay',
      'decap',
      'route',
      'forward',
      'bridge',
      'veth',
      'deliver',
    ])
    expect(t.hops[0]).toMatchObject({
      netns: a.netns,
      out: 'eth0',
      lookup: {dst: b.ip, src: a.ip, gateway: '172.20.1.1', dev: 'eth0'},
    })
    const vtep2 = network(n2.podCIDRs[0]!)
    expect(t.hops[3]).toMatchObject({
      node: 'node1',
      in: 'cni0',
      out: 'flannel.1',
      lookup: {iif: 'cni0', gateway: vtep2, dev: 'flannel.1'},
    })
    expect(t.hops[3]!.evidence).toContain(`${n2.podCIDRs[0]} via ${vtep2} dev flannel.1 onlink`)
    expect(t.hops[3]!.evidence).toContain(`${vtep2} dev flannel.1 lladdr ${vtepMAC(n2.annotations)} PERMANENT`)
    const encap = t.hops[5]!
    expect(encap.evidence[0]).toBe(`${vtepMAC(n2.annotations)} dev flannel.1 dst ${n2.internalIP} self permanent`)
    expect(encap.packet).toMatchObject({
      src: a.ip,
      dst: b.ip,
      size: 84 + 50,
      encap: [{type: 'vxlan', outerSrc: n1.internalIP, outerDst: n2.internalIP, vni: 1, port: 8472}],
    })
    expect(t.hops[6]).toMatchObject({
      node: 'node1',
      out: 'eth0',
      lookup: {dst: n2.internalIP, src: n1.internalIP, oif: 'eth0', dev: 'eth0'},
    })
    expect(t.hops[8]).toMatchObject({
      node: 'node2',
      in: 'eth0',
      out: 'flannel.1',
      action: 'decap',
      packet: {size: 84, encap: []},
    })
    expect(t.hops.at(-1)).toMatchObject({node: 'node2', netns: b.netns, in: 'eth0', lookup: {dev: 'lo'}})
    expect(t.findings).toEqual([])
    expect(schemaErrors(t)).toBeUndefined()
  })

  it('walks the reply back the same way, mirrored', () => {
    const t = trace(snap, a.name, b.name)
    expect(t.returnPath?.disposition).toBe('DELIVERED')
    const back = t.returnPath!.hops.filter((h) => h.action === 'route' && h.in && h.packet?.encap.length === 0)
    expect(back.map((h) => [h.node, h.in, h.out])).toEqual([
      ['node2', 'cni0', 'flannel.1'],
      ['node1', 'flannel.1', 'cni0'],
    ])
    expect(t.returnPath!.hops.at(-1)).toMatchObject({netns: a.netns, action: 'deliver'})
  })

  it('stays on the bridge between two pods of one node', () => {
    const t = trace(snap, 'pod-node1-1', 'pod-node1-2')
    expect(t.disposition).toBe('DELIVERED')
    expect(actions(t)).toEqual(['route', 'veth', 'bridge', 'veth', 'deliver'])
    expect(t.hops[0]!.lookup).toMatchObject({dev: 'eth0'})
    expect(t.hops[0]!.lookup?.gateway).toBeUndefined()
  })

  it('starts a node endpoint from the address the kernel selects, and delivers to a node in its own namespace', () => {
    const t = trace(snap, 'node1', b.name)
    expect(t.src).toMatchObject({node: 'node1', ip: network(n1.podCIDRs[0]!), netns: 'col-fx.node1'})
    expect(t.disposition).toBe('DELIVERED')
    expect(t.returnPath?.disposition).toBe('DELIVERED')
  })

  it('sees the reply to a node address come back another way: ASYMMETRIC_PATH', () => {
    // node2 reaches node1's InternalIP straight over the underlay; node1 answers a pod address through flannel.1
    const t = trace(snap, b.name, 'node1')
    expect(t).toMatchObject({
      disposition: 'DELIVERED',
      dst: {ip: n1.internalIP},
      returnPath: {disposition: 'DELIVERED'},
    })
    expect(t.hops.at(-1)).toMatchObject({node: 'node1', netns: 'col-fx.node1', action: 'deliver', in: 'eth0'})
    expect(t.returnPath!.hops.find((h) => h.action === 'encap')).toMatchObject({node: 'node1', out: 'flannel.1'})
    expect(t.findings).toMatchObject([
      {
        code: 'ASYMMETRIC_PATH',
        severity: 'warning',
        node: 'node2',
        evidence: ['request: node2 cni0 → eth0', 'reply: node2 flannel.1 → cni0'],
      },
    ])
  })

  it('fragments a big packet without DF and refuses it with DF at the pod (eth0 mtu 1450)', () => {
    expect(trace(snap, a.name, b.name, {size: 1450}).disposition).toBe('DELIVERED')
    const big = trace(snap, a.name, b.name, {size: 1451})
    expect(big).toMatchObject({disposition: 'MTU_EXCEEDED', returnPath: null})
    expect(big.hops.at(-1)!.evidence[0]).toMatch(/eth0 mtu 1450 < 1451 bytes with DF set/)
    expect(trace(snap, a.name, b.name, {size: 1451, df: false}).disposition).toBe('DELIVERED')
  })
})

describe('flannel host-gw (a recorded 3-node lab)', () => {
  const snap = snapshotFixture('flannel-host-gw-lab')
  it('routes via the peer node on eth0 and hands the frame to it on the underlay', () => {
    const n2 = node(snap, 'node2')
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    expect(actions(t)).toEqual([
      'route',
      'veth',
      'bridge',
      'route',
      'forward',
      'underlay',
      'route',
      'forward',
      'bridge',
      'veth',
      'deliver',
    ])
    expect(t.hops[3]).toMatchObject({
      node: 'node1',
      in: 'cni0',
      out: 'eth0',
      lookup: {gateway: n2.internalIP, dev: 'eth0'},
    })
    expect(t.hops[5]!.evidence[0]).toMatch(new RegExp(`^${n2.internalIP} is node2's address on eth0`))
    expect(t.hops[6]).toMatchObject({node: 'node2', in: 'eth0', out: 'cni0'})
  })
})

describe('flannel udp (a recorded 3-node lab)', () => {
  const snap = snapshotFixture('flannel-udp-lab')
  it('hands the packet to the daemon on flannel0, carries it in UDP 8285 and writes it into the peer flannel0', () => {
    const [n1, n2] = [node(snap, 'node1'), node(snap, 'node2')]
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    expect(actions(t)).toEqual([
      'route',
      'veth',
      'bridge',
      'route',
      'forward',
      'udp-forward',
      'route',
      'underlay',
      'udp-forward',
      'route',
      'forward',
      'bridge',
      'veth',
      'deliver',
    ])
    expect(t.hops[3]).toMatchObject({
      out: 'flannel0',
      evidence: expect.arrayContaining(['172.20.0.0/16 dev flannel0 proto kernel scope link src 172.20.1.0']),
    })
    expect(t.hops[5]!.packet).toMatchObject({
      size: 84 + 28,
      encap: [{type: 'udp', outerSrc: n1.internalIP, outerDst: n2.internalIP, port: 8285}],
    })
    expect(t.hops[5]!.evidence.join('\n')).toMatch(/netctl-udp-forwarder/)
    expect(t.hops[8]).toMatchObject({node: 'node2', in: 'eth0', out: 'flannel0', packet: {encap: []}})
  })

  it('ends in BLACKHOLE when the sender has no daemon, and DECAP_REJECTED when the receiver has none', () => {
    const gone = snapshotFixture('flannel-udp-lab')
    gone.nodeStates.node1!.processes = []
    expect(trace(gone, 'pod-node1-1', 'pod-node2-1')).toMatchObject({
      disposition: 'BLACKHOLE',
      findings: [{code: 'UDP_DAEMON_DOWN', node: 'node1'}],
    })
    const far = snapshotFixture('flannel-udp-lab')
    far.nodeStates.node2!.processes = []
    const t = trace(far, 'pod-node1-1', 'pod-node2-1')
    expect(t).toMatchObject({disposition: 'DECAP_REJECTED', findings: [{code: 'UDP_DAEMON_DOWN', node: 'node2'}]})
    expect(t.hops.at(-1)).toMatchObject({node: 'node2', in: 'eth0', action: 'drop'})
  })
})
