/**
 * Address translation in the walk: DNAT before routing, SNAT/MASQUERADE on the
 * way out, the mark kube-proxy sets followed to its masquerade, and the reply
 * translated back at the node that translated the request (as conntrack does).
 */
import {describe, expect, it} from 'vitest'

import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {parseNftRuleset} from '../../../src/collect/parse/nft.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Hop} from '../../../src/model/trace.js'
import {fixture} from '../../helpers/fixtures.js'
import {schemaErrors, snapshotFixture, trace} from './fixtures.js'

const nat = (...rules: string[]) =>
  [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':KUBE-MARK-MASQ - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ...rules,
    'COMMIT',
    '',
  ].join('\n')

/** kube-proxy's masquerade pair (pkg/proxy/iptables/proxier.go), as iptables-save prints it */
const KUBE_MASQ = [
  '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
  '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
  '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
  '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
  '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
]

const natHops = (hops: Hop[]) => hops.filter((h) => h.netfilter?.nat?.some((n) => n.after))

describe('DNAT in PREROUTING rewrites the packet; routing takes the new destination', () => {
  it("a port on pod-node3-1's address sent to pod-node2-1:8080: DELIVERED in pod-node2-1, the reply un-DNATed at node1", () => {
    const snap = snapshotFixture('calico-vxlan-lab')
    snap.nodeStates.node1!.iptables = parseIptablesSave(
      nat('-A PREROUTING -d 172.20.3.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.20.2.2:8080'),
    )
    const t = trace(snap, 'pod-node1-1', 'pod-node3-1', {protocol: 'tcp', port: 80})
    expect(t.disposition).toBe('DELIVERED')
    const dnat = natHops(t.hops)
    expect(dnat).toHaveLength(1)
    expect(dnat[0]).toMatchObject({
      node: 'node1',
      action: 'filter',
      netfilter: {
        hook: 'PREROUTING',
        nat: [
          {
            ruleset: 'iptables nat',
            before: 'tcp 172.20.1.2 → 172.20.3.2:80',
            after: 'tcp 172.20.1.2 → 172.20.2.2:8080',
          },
        ],
      },
    })
    expect(dnat[0]!.evidence).toContain('DNAT: tcp 172.20.1.2 → 172.20.3.2:80 becomes tcp 172.20.1.2 → 172.20.2.2:8080')
    // node1 routes to node2's block, not node3's; the packet lands in pod-node2-1
    const route = t.hops.find((h) => h.node === 'node1' && h.action === 'route' && h.in !== undefined)
    expect(route?.lookup?.dst).toBe('172.20.2.2')
    expect(t.hops.some((h) => h.node === 'node3')).toBe(false)
    const last = t.hops.at(-1)!
    expect(last).toMatchObject({node: 'node2', action: 'deliver'})
    expect(last.netns).not.toBe(snap.nodeStates.node2!.netns)
    // the reply: from pod-node2-1:8080 to pod-node1-1, back to 172.20.3.2:80 at node1
    expect(t.returnPath?.disposition).toBe('DELIVERED')
    const back = t.returnPath!.hops
    expect(back[0]!.node).toBe('node2')
    const un = back.filter((h) => h.netfilter?.nat?.[0]?.ruleset === 'conntrack')
    expect(
      un.map((h) => [h.node, h.netfilter!.hook, h.netfilter!.nat![0]!.before, h.netfilter!.nat![0]!.after]),
    ).toEqual([['node1', 'POSTROUTING', 'tcp 172.20.2.2 → 172.20.1.2', 'tcp 172.20.3.2 → 172.20.1.2']])
    expect(back.at(-1)).toMatchObject({node: 'node1', action: 'deliver'})
    expect(schemaErrors(t)).toBeUndefined()
  })

  it('without the rule the same trace goes to node3 (the translation, not the fixture, moved it)', () => {
    const t = trace(snapshotFixture('calico-vxlan-lab'), 'pod-node1-1', 'pod-node3-1', {protocol: 'tcp', port: 80})
    expect(t.hops.at(-1)!.node).toBe('node3')
  })
})

describe("KUBE-MARK-MASQ followed to KUBE-POSTROUTING's MASQUERADE", () => {
  function marked(): Snapshot {
    const snap = snapshotFixture('calico-vxlan-lab')
    snap.nodeStates.node1!.iptables = parseIptablesSave(
      nat(
        '-A PREROUTING -d 172.20.3.2/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ',
        '-A PREROUTING -d 172.20.3.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.20.2.2:8080',
        ...KUBE_MASQ,
      ),
    )
    return snap
  }

  it('the mark set in PREROUTING is read in POSTROUTING: the source becomes the address of the device it leaves by', () => {
    const snap = marked()
    const t = trace(snap, 'pod-node1-1', 'pod-node3-1', {protocol: 'tcp', port: 80})
    expect(t.disposition).toBe('DELIVERED')
    const [dnat, masq] = natHops(t.hops)
    expect(dnat!.netfilter!.hook).toBe('PREROUTING')
    const out = masq!.out!
    const addr = snap.nodeStates.node1!.addresses.find((a) => a.dev === out && a.family === 'inet')!.local
    expect(masq).toMatchObject({
      node: 'node1',
      netfilter: {
        hook: 'POSTROUTING',
        nat: [
          {
            rule: '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
            before: 'tcp 172.20.1.2 → 172.20.2.2:8080',
            after: `tcp ${addr} → 172.20.2.2:8080`,
          },
        ],
      },
    })
    // without the mark KUBE-POSTROUTING returns: no masquerade (the first test's trace has none)
    expect(masq!.evidence).toContain(`SNAT: tcp 172.20.1.2 → 172.20.2.2:8080 becomes tcp ${addr} → 172.20.2.2:8080`)
    // the packet on the wire, and as pod-node2-1 receives it, comes from the node
    expect(t.hops.at(-1)!.packet?.src ?? t.hops.filter((h) => h.packet).at(-1)!.packet!.src).toBe(addr)
    // the reply goes to the node, which un-SNATs (before routing) and un-DNATs (on the way out) it to pod-node1-1
    expect(t.returnPath?.disposition).toBe('DELIVERED')
    const un = t.returnPath!.hops.filter((h) => h.netfilter?.nat?.[0]?.ruleset === 'conntrack')
    expect(un.map((h) => [h.node, h.netfilter!.hook, h.netfilter!.nat![0]!.after])).toEqual([
      ['node1', 'PREROUTING', 'tcp 172.20.2.2 → 172.20.1.2'],
      ['node1', 'POSTROUTING', 'tcp 172.20.3.2 → 172.20.1.2'],
    ])
    expect(schemaErrors(t)).toBeUndefined()
  })
})

describe("nft kube-proxy: the service-ips verdict map, numgen's first endpoint, dnat and mark-for-masquerade", () => {
  it('numgen splits three ways; the first (all equally likely) is walked, said so, and its dnat applied', () => {
    const snap = snapshotFixture('calico-vxlan-lab')
    // the web Service's ClusterIP stands in as pod-node3-2's address: the trace's endpoints are pods
    const text = fixture('netfilter', 'calico-vxlan-nftables/node1.nft.json').replaceAll('172.21.0.80', '172.20.3.3')
    const kp = parseNftRuleset(text)
    kp.tables = kp.tables.filter((x) => x.name === 'kube-proxy')
    snap.nodeStates.node1!.nft = kp
    snap.nodeStates.node1!.sections.nftables = {status: 'ok'}
    const t = trace(snap, 'pod-node1-2', 'pod-node3-2', {protocol: 'tcp', port: 80})
    expect(t.disposition).toBe('DELIVERED')
    const [dnat] = natHops(t.hops)
    expect(dnat).toMatchObject({
      node: 'node1',
      netfilter: {
        hook: 'PREROUTING',
        nat: [
          {
            ruleset: expect.stringContaining('nft ip kube-proxy nat-prerouting'),
            after: 'tcp 172.20.1.3 → 172.20.1.2:8080',
          },
        ],
      },
    })
    expect(dnat!.netfilter!.alternatives!.map((a) => a.probability)).toEqual([1 / 3, 1 / 3, 1 / 3])
    expect(dnat!.evidence.join('\n')).toContain(
      'numgen splits the walk; the ways are equally likely, the first is walked:',
    )
    // pod-node1-1 on the same node: no tunnel, delivered there; the reply is un-DNATed at node1
    expect(t.hops.some((h) => h.node !== 'node1')).toBe(false)
    expect(t.returnPath?.disposition).toBe('DELIVERED')
    expect(t.returnPath!.hops.some((h) => h.netfilter?.nat?.[0]?.after === 'tcp 172.20.3.3 → 172.20.1.3')).toBe(true)
    expect(schemaErrors(t)).toBeUndefined()
  })
})
