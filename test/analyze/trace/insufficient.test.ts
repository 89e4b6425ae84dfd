/**
 * When the snapshot lacks what a decision needs, the walk says so
 * (INSUFFICIENT_INFO, `missing` naming it) and asks for the nodes it needs
 * (needNodes), rather than guess.
 */
import {describe, expect, it} from 'vitest'

import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {fixture} from '../../helpers/fixtures.js'
import {node, run, schemaErrors, snapshotFixture, trace} from './fixtures.js'

describe('INSUFFICIENT_INFO and needNodes', () => {
  it("walks as far as node1 when node2's state is missing, and asks for node2", () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    delete snap.nodeStates.node2
    snap.errors.push({node: 'node2', code: 'NODE_UNREACHABLE', message: 'timed out after 30s'})
    const r = run(snap, 'pod-node1-1', 'pod-node2-1')
    expect(r.needNodes).toEqual(['node2'])
    expect(r.trace).toMatchObject({
      disposition: 'INSUFFICIENT_INFO',
      returnPath: null,
      missing: ['node2: node state not collected (NODE_UNREACHABLE: timed out after 30s)'],
    })
    // node1's part of the path is all there, up to the underlay hop that needs node2
    expect(r.trace.hops.map((h) => h.node)).not.toContain('node2')
    expect(r.trace.hops.at(-1)).toMatchObject({node: 'node1', action: 'drop'})
    expect(r.trace.hops.some((h) => h.action === 'encap')).toBe(true)
    expect(schemaErrors(r.trace)).toBeUndefined()
  })

  it('asks for the source node before walking at all', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    delete snap.nodeStates.node1
    const r = run(snap, 'pod-node1-1', 'pod-node3-1')
    expect(r).toMatchObject({
      needNodes: ['node1'],
      trace: {disposition: 'INSUFFICIENT_INFO', hops: [], missing: ['node1: node state not collected']},
    })
  })

  it('asks for a node the path crosses only on the way (host-gw via a third node)', () => {
    const snap = snapshotFixture('flannel-host-gw-lab')
    const [n2, n3] = [node(snap, 'node2'), node(snap, 'node3')]
    const route = snap.nodeStates.node1!.routes.find((r) => r.dst === n2.podCIDRs[0])!
    route.gateway = n3.internalIP
    delete snap.nodeStates.node3
    const r = run(snap, 'pod-node1-1', 'pod-node2-1')
    expect(r.needNodes).toEqual(['node3'])
    expect(r.trace.disposition).toBe('INSUFFICIENT_INFO')
  })

  it("says which section a decision lacked: node2's iptables, a pod's namespace", () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    snap.nodeStates.node2!.sections.iptables = {status: 'error', message: 'iptables-save: exit 4'}
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    // the vxlan packet meets node2's PREROUTING hook (raw, mangle, nat) before INPUT and before the pod packet meets FORWARD
    expect(t).toMatchObject({
      disposition: 'INSUFFICIENT_INFO',
      missing: ["node2: iptables error (iptables-save: exit 4), needed for netfilter's PREROUTING hook"],
    })
    expect(t.hops.at(-1)).toMatchObject({node: 'node2', action: 'drop'})

    const gone = snapshotFixture('flannel-vxlan-lab')
    gone.nodeStates.node2!.pods = gone.nodeStates.node2!.pods.filter((p) => p.name !== 'pod-node2-1')
    const r = run(gone, 'pod-node1-1', 'pod-node2-1')
    expect(r.needNodes).toEqual([])
    expect(r.trace).toMatchObject({
      disposition: 'INSUFFICIENT_INFO',
      missing: expect.arrayContaining([expect.stringMatching(/^node2: the namespace behind the bridge port veth/)]),
    })
  })

  it('does not guess past a firewall rule whose match it cannot evaluate', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    snap.nodeStates.node2!.iptables = parseIptablesSave(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A FORWARD -m set --match-set allowed src -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
    )
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('INSUFFICIENT_INFO')
    expect(t.missing?.[0]).toMatch(
      /^node2: whether '-A FORWARD -m set --match-set allowed src -j ACCEPT' matches icmp 172\.20\.1\.2 → 172\.20\.2\.2 \(set --match-set allowed src: node2: ipset not collected\)/,
    )
    expect(t.hops.at(-1)?.evidence).toContain('-P FORWARD DROP')
  })

  it('walks a kube-proxy style FORWARD chain (policy DROP) to the flannel rule that accepts pod traffic', () => {
    const snap = snapshotFixture('flannel-vxlan-lab')
    snap.nodeStates.node2!.iptables = parseIptablesSave(fixture('iptables', 'flannel-kube-proxy-nft.txt'))
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    const filter = t.hops.find(
      (h) => h.node === 'node2' && h.action === 'filter' && h.evidence[0] === 'filter FORWARD:',
    )!
    expect(filter.evidence.at(-1)).toBe(
      '-A FLANNEL-FWD -s 172.20.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    )
    expect(filter.evidence).toContain('-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD')
  })
})
