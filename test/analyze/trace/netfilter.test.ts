/**
 * Netfilter in the walk, over a recorded calico-vxlan lab snapshot with the
 * agents' rules put on its nodes (as a real node holds them).
 */
import {describe, expect, it} from 'vitest'

import {evaluateNftChain} from '../../../src/analyze/netfilter/nft.js'
import {parseIpsetSave} from '../../../src/collect/parse/ipset.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {parseNftRuleset} from '../../../src/collect/parse/nft.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import {fixture} from '../../helpers/fixtures.js'
import {schemaErrors, snapshotFixture, trace} from './fixtures.js'

/** Felix's VXLAN pair in cali-INPUT on every node, and its ipset with every node's address. */
function withFelixInput(members: string[]): Snapshot {
  const snap = snapshotFixture('calico-vxlan-lab')
  for (const state of Object.values(snap.nodeStates)) {
    state.iptables = parseIptablesSave(fixture('iptables', 'calico-felix-kube-proxy-nft.txt'))
    state.ipsets = parseIpsetSave(
      [
        'create cali40all-vxlan-net hash:net family inet hashsize 1024 maxelem 1048576',
        ...members.map((m) => `add cali40all-vxlan-net ${m}`),
        '',
      ].join('\n'),
    )
    state.sections.ipset = {status: 'ok'}
  }
  return snap
}

describe("Felix's VXLAN allow/deny pair in cali-INPUT", () => {
  it('every node in the set: a cross-node trace is DELIVERED, not INSUFFICIENT_INFO', () => {
    const t = trace(withFelixInput(['172.31.0.11', '172.31.0.12', '172.31.0.13']), 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    expect(t.returnPath?.disposition).toBe('DELIVERED')
    const input = t.hops.find((h) => h.node === 'node2' && h.action === 'filter' && h.evidence[0] === 'filter INPUT:')!
    expect(input.evidence.join('\n')).toContain(
      '--match-set cali40all-vxlan-net src -m addrtype --dst-type LOCAL -j ACCEPT',
    )
    expect(schemaErrors(t)).toBeUndefined()
  })

  it("the sender missing from the set: DENIED at the receiving node, by Felix's drop rule", () => {
    const t = trace(withFelixInput(['172.31.0.12', '172.31.0.13']), 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DENIED')
    const drop = t.hops.at(-1)!
    expect(drop).toMatchObject({node: 'node2', action: 'drop'})
    expect(drop.evidence.join('\n')).toContain('Drop IPv4 VXLAN packets from non-allowed hosts')
    expect(t.findings.map((f) => f.code)).toContain('ENCAP_PORT_BLOCKED')
  })
})

describe('native nftables base chains in the walk', () => {
  it('a drop in a native nft table (inet t, forward hook) is DENIED with the rule as nft prints it', () => {
    const snap = snapshotFixture('calico-vxlan-lab')
    snap.nodeStates.node2!.nft = parseNftRuleset(fixture('nft', 'inet-forward-drop.json'))
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DENIED')
    expect(t.hops.at(-1)).toMatchObject({
      node: 'node2',
      action: 'drop',
      evidence: ['table inet t chain f:', 'ip daddr 172.20.2.2 drop'],
    })
    const f = t.findings.find((x) => x.code === 'FIREWALL_DROP')!
    expect(f).toMatchObject({node: 'node2', subject: 'nft inet t f'})
    expect(f.message).toMatch(/^ip daddr 172\.20\.2\.2 drop drops icmp 172\.20\.1\.2 → 172\.20\.2\.2 on node2/)
    // nft's own commands (family, table and chain as nft names them; the rule by its handle), not iptables'
    expect(f.fix.split('\n')).toEqual([
      '# the rule: ip daddr 172.20.2.2 drop',
      'nft -a list chain inet t f',
      '# if it should not match pod traffic, delete it by its handle: nft delete rule inet t f handle 2',
    ])
    // to the other pod of node2 it passes
    expect(trace(snap, 'pod-node1-1', 'pod-node2-2').disposition).toBe('DELIVERED')
  })

  it("kube-proxy's and a firewalld-style table beside iptables-nft: interleaved by priority, iptables-nft's own tables not walked twice", () => {
    const snap = withFelixInput(['172.31.0.11', '172.31.0.12', '172.31.0.13'])
    for (const state of Object.values(snap.nodeStates)) state.nft = parseNftRuleset(fixture('nft', 'lab-node1.json'))
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    const fwd = t.hops.find((h) => h.node === 'node1' && h.action === 'filter' && h.evidence[0] === 'filter FORWARD:')!
    const headers = fwd.evidence.filter((l) => l.startsWith('# '))
    // kube-proxy's filter-forward (-110) before iptables' filter (0), before firewalld's (10)
    expect(headers).toEqual([
      '# nft ip kube-proxy filter-forward (hook forward priority -110)',
      '# iptables',
      '# nft inet firewalld filter_FORWARD (hook forward priority 10)',
    ])
    expect(t.hops.some((h) => h.evidence.some((l) => /nft ip (filter|nat|raw|mangle) /.test(l)))).toBe(false)
    expect(schemaErrors(t)).toBeUndefined()
  })

  it('numgen random mod 2 vmap: each endpoint an alternative with its probability and its dnat', () => {
    const kp = parseNftRuleset(fixture('nft', 'lab-node1.json')).tables.find((x) => x.name === 'kube-proxy')!
    const chain = kp.chains.find((c) => c.name === 'nat-prerouting')!
    const r = evaluateNftChain(kp, chain, {
      src: '172.20.1.3',
      dst: '10.96.0.10',
      protocol: 'udp',
      sport: 4000,
      dport: 53,
      in: 'cali1',
      ctstate: 'NEW',
      mark: 0,
    })
    expect(r.alternatives!.map((a) => [a.probability, a.nat?.stmt])).toEqual([
      [0.5, {addr: '172.20.1.2', port: 53}],
      [0.5, {addr: '172.20.2.2', port: 53}],
    ])
    expect(r.alternatives![1]!.evidence.at(-1)).toBe(
      'meta l4proto udp dnat to 172.20.2.2:53    (numgen random mod 2 = 1 on this way)',
    )
  })

  it('verdict maps, named sets, fib daddr type local, meta mark set and read, reject', () => {
    const kp = parseNftRuleset(fixture('nft', 'lab-node1.json')).tables.find((x) => x.name === 'kube-proxy')!
    const chain = (n: string) => kp.chains.find((c) => c.name === n)!
    const env = {addrType: (ip: string) => (ip === '172.31.0.11' ? 'LOCAL' : 'UNICAST')}
    // NodePort on the node's own address: fib daddr type local → service-nodeports → mark for masquerade, dnat
    const np = evaluateNftChain(
      kp,
      chain('nat-prerouting'),
      {
        src: '172.31.0.12',
        dst: '172.31.0.11',
        protocol: 'tcp',
        sport: 4000,
        dport: 30080,
        in: 'eth0',
        ctstate: 'NEW',
        mark: 0,
      },
      env,
    )
    expect(np).toMatchObject({
      verdict: 'accept',
      nat: {kind: 'dnat', stmt: {addr: '172.20.1.3', port: 80}},
      packet: {mark: 0x4000},
    })
    // the mark is read in masquerading
    const masq = evaluateNftChain(
      kp,
      chain('nat-postrouting'),
      {src: '172.31.0.12', dst: '172.20.1.3', protocol: 'tcp', dport: 80, ctstate: 'NEW', mark: 0x4000},
      env,
    )
    expect(masq).toMatchObject({nat: {kind: 'masquerade'}, packet: {mark: 0}})
    expect(
      evaluateNftChain(
        kp,
        chain('nat-postrouting'),
        {src: '172.20.1.2', dst: '172.20.2.2', protocol: 'tcp', dport: 80, ctstate: 'NEW', mark: 0},
        env,
      ).nat,
    ).toBeUndefined()
    // a Service without endpoints: no-endpoint-services sends it to reject-chain
    const none = evaluateNftChain(
      kp,
      chain('filter-forward'),
      {src: '172.20.1.2', dst: '10.96.0.30', protocol: 'tcp', dport: 80, ctstate: 'NEW', mark: 0},
      env,
    )
    expect(none).toMatchObject({verdict: 'reject', rule: {text: 'reject'}})
    // ct state: not for an established reply
    expect(
      evaluateNftChain(
        kp,
        chain('filter-forward'),
        {src: '172.20.1.2', dst: '10.96.0.30', protocol: 'tcp', dport: 80, ctstate: 'ESTABLISHED', mark: 0},
        env,
      ).verdict,
    ).toBe('accept')
  })
})

describe('the trace JSON records translations and alternatives (netfilter on filter hops)', () => {
  it('a nat POSTROUTING rule split by statistic: both ways with their probabilities; a certain SNAT as nat', () => {
    const snap = snapshotFixture('calico-vxlan-lab')
    const lines = (rule: string) =>
      [
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':INPUT ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':POSTROUTING ACCEPT [0:0]',
        rule,
        'COMMIT',
        '',
      ].join('\n')
    snap.nodeStates.node1!.iptables = parseIptablesSave(
      lines(
        '-A POSTROUTING -d 172.20.2.2/32 -m statistic --mode random --probability 0.25000000000 -j SNAT --to-source 172.31.0.11',
      ),
    )
    const t = trace(snap, 'pod-node1-1', 'pod-node2-1')
    expect(t.disposition).toBe('DELIVERED')
    const hop = t.hops.find((h) => h.netfilter)!
    expect(hop).toMatchObject({node: 'node1', action: 'filter', netfilter: {hook: 'POSTROUTING'}})
    expect(hop.netfilter!.alternatives).toEqual([
      {
        ruleset: 'iptables nat',
        probability: 0.25,
        rule: '-A POSTROUTING -d 172.20.2.2/32 -m statistic --mode random --probability 0.25000000000 -j SNAT --to-source 172.31.0.11',
      },
      {ruleset: 'iptables nat', probability: 0.75, rule: '-P POSTROUTING ACCEPT'},
    ])
    expect(schemaErrors(t)).toBeUndefined()

    snap.nodeStates.node1!.iptables = parseIptablesSave(
      lines('-A POSTROUTING -d 172.20.2.2/32 -j SNAT --to-source 172.31.0.11'),
    )
    const certain = trace(snap, 'pod-node1-1', 'pod-node2-1').hops.find((h) => h.netfilter)!
    expect(certain.netfilter).toEqual({
      hook: 'POSTROUTING',
      nat: [
        {
          ruleset: 'iptables nat',
          rule: '-A POSTROUTING -d 172.20.2.2/32 -j SNAT --to-source 172.31.0.11',
          before: 'icmp 172.20.1.2 → 172.20.2.2',
          after: 'icmp 172.31.0.11 → 172.20.2.2',
        },
      ],
    })
  })
})
