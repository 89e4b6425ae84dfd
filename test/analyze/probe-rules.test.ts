/**
 * trace --probe's rule counters, conntrack and the underlay cases, from recordings
 * of real labs (fixtures/trace-probe/*-flat, by scripts/capture-trace-probe.ts):
 * pod-node1-1 → pod-node2-1 on 2-node flannel vxlan and Calico vxlan labs, each
 * node's raw reads as the probe service got them, healthy and with a fault:
 * `iptables -I FORWARD -d <pod> -j DROP` on node2, a DROP first in Felix's
 * cali-tw- chain of node2's pod, the fabric's port to node2 at MTU 1400 (a
 * 1400-byte DF ping), the fabric's port to node2 down; and a lab with kube-proxy
 * in nftables mode and firewalld, healthy and with an nft `counter drop` rule.
 */
import {stripVTControlCharacters as stripAnsi} from 'node:util'

import {describe, expect, it} from 'vitest'

import {probeChains} from '../../src/analyze/probe-rules.js'
import {probeVerdict} from '../../src/analyze/probe-verdict.js'
import {parseFlowConntrack, probeReadScript} from '../../src/collect/probe-read.js'
import type {Trace} from '../../src/model/trace.js'
import {probeText} from '../../src/render/trace.js'
import {describeSchemaError, validatorFor} from '../../src/util/schema.js'
import {fixture} from '../helpers/fixtures.js'
import {replayedObservation} from '../helpers/probe-fixtures.js'

const FLANNEL = 'trace-probe/flannel-vxlan-flat'
const CALICO = 'trace-probe/calico-vxlan-flat'
// kube-proxy in nftables mode and firewalld's inet table; nft-drop: `nft insert rule inet firewalld filter_FORWARD ip daddr <pod> counter drop` on node2
const NFT = 'trace-probe/flannel-vxlan-nft'
const ctx = {version: '9.9.9-test', nodeIPs: {node1: '172.31.0.11', node2: '172.31.0.12'}}
const walkOf = (dir: string, scenario: string): Trace => JSON.parse(fixture(dir, scenario, 'walk.json')) as Trace

const replay = replayedObservation
const probed = (dir: string, scenario: string, walk = walkOf(dir, scenario)) =>
  probeVerdict(walk, replay(dir, scenario, walk), ctx)

describe('the chains a probe reads', () => {
  it("are those of the walk's filter hops in host namespaces, with the table from the evidence's labels and the chains jumped to", () => {
    const chains = probeChains(walkOf(FLANNEL, 'healthy'))
    const fwd = chains.find((c) => c.node === 'node2' && c.chain === 'FORWARD' && c.path === 'forward')!
    expect(fwd.ruleset).toBe('iptables')
    expect(fwd.used).toContain('-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD')
    // jumped to: read even where none of its rules matched
    expect(chains.some((c) => c.node === 'node2' && c.chain === 'KUBE-FORWARD')).toBe(true)
    // a hop with several tables names them: `# iptables nat` before the nat rules
    expect(chains.find((c) => c.node === 'node1' && c.chain === 'OUTPUT' && c.table === 'nat')?.used).toEqual([
      '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    ])
    // nothing from the pods' own namespaces
    expect(chains.every((c) => c.node === 'node1' || c.node === 'node2')).toBe(true)
  })

  it('are read only where the walk crossed rules of that kind', () => {
    const s = probeReadScript({iptables: true, nft: false})
    expect(s).toContain('iptables-save -c')
    expect(s).not.toContain('nft -j')
    expect(s).not.toContain('conntrack -L')
  })
})

describe('rule counters in the verdict', () => {
  it("confirm a DENIED walk with the dropping rule's own counter (iptables -I FORWARD -d <pod> -j DROP on node2)", () => {
    const r = probed(FLANNEL, 'iptables-drop')
    expect(r.disposition).toBe('DENIED')
    expect(r.probe?.verdict).toBe('confirmed')
    const rule = r.probe!.rules!.find((x) => x.rule === '-A FORWARD -d 172.20.2.2/32 -j DROP')!
    expect(rule).toMatchObject({node: 'node2', table: 'filter', chain: 'FORWARD', used: true, drops: true, packets: 3})
    expect(r.probe?.note).toContain(
      'the counter of `-A FORWARD -d 172.20.2.2/32 -j DROP` (iptables filter, node2) rose by 3',
    )
  })

  it("confirm Felix's cali-tw- DROP the walk stops at", () => {
    const walk = walkOf(CALICO, 'policy-drop')
    const r = probed(CALICO, 'policy-drop')
    const iface = walkOf(CALICO, 'healthy').hops.find((h) => h.node === 'node2' && h.action === 'veth')!.out!
    expect(walk.disposition).toBe('DENIED')
    expect(r.probe?.verdict).toBe('confirmed')
    expect(r.probe?.note).toContain(`the counter of \`-A cali-tw-${iface} -j DROP\` (iptables filter, node2) rose by 3`)
  })

  it('make a walk that delivers but a drop rule on the path counted the lost packets MODEL_DISAGREES, naming the rule', () => {
    // the healthy walk with the reads of the DROP: as if the model had not seen the rule
    const r = probed(FLANNEL, 'iptables-drop', walkOf(FLANNEL, 'healthy'))
    expect(r.probe?.verdict).toBe('model-disagrees')
    const f = r.findings.find((x) => x.code === 'MODEL_DISAGREES')!
    expect(f.node).toBe('node2')
    expect(f.message).toContain('they part at `-A FORWARD -d 172.20.2.2/32 -j DROP` on node2, whose counter rose by 3')
    expect(f.evidence).toContain(
      'the counter of `-A FORWARD -d 172.20.2.2/32 -j DROP` (iptables filter, node2) rose by 3',
    )
  })

  it('read drop rules that did not count (+0) on a healthy pair, and leave the walk confirmed', () => {
    const r = probed(CALICO, 'healthy')
    expect(r.probe?.verdict).toBe('confirmed')
    const drops = r.probe!.rules!.filter((x) => x.drops)
    expect(drops.length).toBeGreaterThan(0)
    expect(drops.every((x) => x.packets === 0)).toBe(true)
    // the rules the walk used counted the probe's packets
    expect(r.probe!.rules!.filter((x) => x.used && x.chain === 'cali-FORWARD').some((x) => x.packets >= 3)).toBe(true)
  })
})

describe('nft rule counters', () => {
  it("follow the walk's `table … chain …:` headers into the chains it jumped to", () => {
    const chains = probeChains(walkOf(NFT, 'healthy'))
    const fwd = chains.find((c) => c.node === 'node1' && c.table === 'inet firewalld' && c.chain === 'filter_FORWARD')!
    expect(fwd.ruleset).toBe('nft')
    expect(fwd.used).toContain('jump filter_FORWARD_ZONES')
    expect(chains.some((c) => c.node === 'node1' && c.chain === 'filter_FWD_trusted')).toBe(true)
    expect(chains.some((c) => c.table === 'ip kube-proxy' && c.chain === 'services')).toBe(true)
  })

  it('confirm a DENIED walk with the counter of the nft rule it drops at, its counter values left out of the rule', () => {
    const r = probed(NFT, 'nft-drop')
    expect(r.disposition).toBe('DENIED')
    expect(r.probe?.verdict).toBe('confirmed')
    expect(r.probe!.rules!.find((x) => x.ruleset === 'nft' && x.drops && x.used)).toMatchObject({
      node: 'node2',
      table: 'inet firewalld',
      chain: 'filter_FORWARD',
      rule: 'ip daddr 172.20.2.2 counter drop',
      packets: 3,
    })
    expect(r.probe?.note).toContain(
      'the counter of `ip daddr 172.20.2.2 counter drop` (nft inet firewalld, node2) rose by 3',
    )
  })

  it('make the delivering walk MODEL_DISAGREES when that nft rule counted the lost packets', () => {
    const r = probed(NFT, 'nft-drop', walkOf(NFT, 'healthy'))
    expect(r.probe?.verdict).toBe('model-disagrees')
    expect(r.findings.find((f) => f.code === 'MODEL_DISAGREES')?.message).toContain(
      '`ip daddr 172.20.2.2 counter drop` on node2',
    )
  })
})

describe('conntrack in the probe', () => {
  it("holds the flow's entries per node, replied both ways on a healthy pair", () => {
    const r = probed(FLANNEL, 'healthy')
    const nodes = r.probe!.conntrack!.map((c) => c.node)
    expect(nodes).toEqual(expect.arrayContaining(['node1', 'node2']))
    for (const c of r.probe!.conntrack!) {
      expect(c.entries.length).toBeGreaterThan(0)
      expect(c.entries[0]).toMatch(/^ipv4 2 icmp 1 \d+ src=172\.20\.1\.2 dst=172\.20\.2\.2 type=8/)
    }
  })

  it('says when more entries matched than were read, and refuses what is not an entry', () => {
    const line =
      'ipv4 2 icmp 1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=1 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=1 mark=0 use=1'
    expect(parseFlowConntrack(['limit 1', line, line].join('\n'))).toEqual({entries: [line], truncated: true})
    expect(parseFlowConntrack('limit 4\n')).toEqual({entries: []})
    expect(() => parseFlowConntrack('limit 4\nconntrack v1.4.7: 0 flow entries')).toThrow()
  })
})

describe('the underlay, from the counters', () => {
  it('names an MTU when a 1400-byte DF ping dies on the fabric link and the same ping at 84 bytes is answered', () => {
    const r = probed(FLANNEL, 'fabric-mtu')
    expect(r.probe).toMatchObject({verdict: 'underlay-drop', answered: 0, smaller: {size: 84, sent: 3, answered: 3}})
    const f = r.findings.find((x) => x.code === 'UNDERLAY_DROP')!
    // the reply (1450 bytes on the wire) is what node2's link into the fabric refuses
    expect(f.subject).toBe('node2 (172.31.0.12) → node1 (172.31.0.11)')
    expect(f.message).toContain('packets of 1450 bytes, UDP 8472 (vxlan VNI 1), while 134-byte ones pass')
    expect(f.message).toContain('an MTU below 1450')
    expect(f.fix).toContain('ping -M do -c 3 -s 1422 172.31.0.11')
    expect(r.returnPath?.disposition).toBe('UNDERLAY_DROP')
  })

  it("confirms the walk's NO_ROUTE when the fabric's port to node2 is down, the packet lost on its way there", () => {
    const r = probed(FLANNEL, 'fabric-down')
    expect(r.disposition).toBe('NO_ROUTE')
    expect(r.findings.map((f) => f.code)).toContain('LINK_DOWN')
    expect(r.probe?.verdict).toBe('confirmed')
    expect(r.probe?.lastSeen?.node).toBe('node1')
    expect(r.probe?.note).toContain('where the walk drops it')
  })
})

describe('the probe section of trace --json', () => {
  it('holds the rules, the conntrack entries and the small ping as schemas/trace.schema.json says', () => {
    const validate = validatorFor('trace')
    for (const [dir, scenario] of [
      [FLANNEL, 'iptables-drop'],
      [FLANNEL, 'fabric-mtu'],
      [CALICO, 'healthy'],
    ] as const) {
      const t = probed(dir, scenario)
      expect(t.probe?.rules?.length).toBeGreaterThan(0)
      expect(validate(JSON.parse(JSON.stringify(t))), `${scenario}: ${describeSchemaError(validate.errors)}`).toBe(true)
    }
    const t = probed(FLANNEL, 'healthy')
    expect(validate({...t, probe: {...t.probe, rules: [{rule: 'x'}]}})).toBe(false)
  })
})

describe("the Probe section's text", () => {
  it('shows how many rules were read, the drop rules that counted, the conntrack entries and the small ping', () => {
    const drop = stripAnsi(probeText(probed(FLANNEL, 'iptables-drop').probe!, 200))
    expect(drop).toMatch(/rules read: \d+ \(\d+ the walk used, \d+ drop rules\); drop rules that counted packets: 1/)
    expect(drop).toContain('+3 node2 iptables filter: -A FORWARD -d 172.20.2.2/32 -j DROP')
    // an accepting rule counts every packet of the node: not shown
    expect(drop).not.toContain('FLANNEL-FWD')
    expect(drop).toMatch(/conntrack node1: ipv4 2 icmp 1 \d+ src=172\.20\.1\.2/)
    expect(stripAnsi(probeText(probed(FLANNEL, 'fabric-mtu').probe!, 200))).toContain(
      'the same ping at 84 bytes: 3 of 3 answered',
    )
  })
})
