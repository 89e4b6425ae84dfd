/**
 * A node's own firewall, beside the agents' rules: the header matches a hardened host writes (ICMP types,
 * TCP flags, rate limits, packet type, TTL, length, TOS/DSCP, address ranges), as iptables-save and
 * `nft -j list ruleset` print them (fixtures/iptables/host-firewall.txt, fixtures/nft/host-firewall.json,
 * written by the tools from one rule set each). The walked packet is a flow's first packet (an echo
 * request, a SYN, a datagram) or its reply (an echo reply, a SYN-ACK); every verdict below is certain.
 * host-firewall-lab.test.ts checks the walk of such rules against real packets.
 */
import {describe, expect, it} from 'vitest'

import {flowHeaderFields} from '../../../src/analyze/netfilter/header-fields.js'
import {evaluateChain} from '../../../src/analyze/netfilter/iptables.js'
import type {FilterPacket} from '../../../src/analyze/netfilter/iptables-match.js'
import {evaluateNftChain} from '../../../src/analyze/netfilter/nft.js'
import {parseIptablesSave} from '../../../src/collect/parse/iptables.js'
import {parseNftRuleset} from '../../../src/collect/parse/nft.js'
import type {Snapshot} from '../../../src/model/snapshot.js'
import type {Protocol, Trace} from '../../../src/model/trace.js'
import {fixture, snapshotFixture} from '../../helpers/fixtures.js'
import {flow} from './fixtures.js'

const ipt = parseIptablesSave(fixture('iptables', 'host-firewall.txt'))
const nftTable = parseNftRuleset(fixture('nft', 'host-firewall.json')).tables[0]!
const save = (...lines: string[]) => parseIptablesSave(['*filter', ...lines, 'COMMIT', ''].join('\n'))
const nftChain = (name: string) => nftTable.chains.find((c) => c.name === name)!

/** A pod's packet forwarded by the node (TTL 63 after its decrement), the flow's first unless `reply`. */
function packet(protocol: 'icmp' | 'tcp' | 'udp', o: Partial<FilterPacket> & {reply?: boolean} = {}): FilterPacket {
  const {reply = false, ...rest} = o
  return {
    src: '10.244.0.2',
    dst: '10.244.1.2',
    protocol,
    ...(protocol === 'icmp' ? {} : {sport: 40000, dport: protocol === 'tcp' ? 8080 : 53}),
    in: 'cni0',
    out: 'flannel.1',
    ctstate: reply ? 'ESTABLISHED' : 'NEW',
    ctdir: reply ? 'REPLY' : 'ORIGINAL',
    mark: 0,
    ttl: 63,
    length: 84,
    tos: 0,
    ...flowHeaderFields(protocol, false, reply),
    ...rest,
  }
}

const toNode = (protocol: 'icmp' | 'tcp' | 'udp', o: Partial<FilterPacket> = {}): FilterPacket => {
  const {out: _out, ...p} = packet(protocol, {dst: '172.31.0.11', in: 'eth0', ttl: 64, ...o})
  return p
}

const iptablesVerdict = (chain: string, p: FilterPacket) => {
  const r = evaluateChain(ipt, chain, p)!
  expect(r.uncertain, JSON.stringify(r.uncertain)).toEqual([])
  return r
}

const nftVerdict = (chain: string, p: FilterPacket) => {
  const r = evaluateNftChain(nftTable, nftChain(chain), p)
  expect(r.uncertain, JSON.stringify(r.uncertain)).toEqual([])
  return r
}

describe('the walked packet', () => {
  it('an echo request and its reply, a SYN and its SYN-ACK; a datagram has no flags', () => {
    expect(flowHeaderFields('icmp', false, false)).toEqual({icmp: {type: 8, code: 0}})
    expect(flowHeaderFields('icmp', false, true)).toEqual({icmp: {type: 0, code: 0}})
    expect(flowHeaderFields('icmp', true, false)).toEqual({icmp: {type: 128, code: 0}})
    expect(flowHeaderFields('icmp', true, true)).toEqual({icmp: {type: 129, code: 0}})
    expect(flowHeaderFields('tcp', false, false)).toEqual({tcpFlags: 0x02})
    expect(flowHeaderFields('tcp', false, true)).toEqual({tcpFlags: 0x12})
    expect(flowHeaderFields('udp', false, false)).toEqual({})
  })
})

describe('iptables: a hardened host (iptables-save of the rule set)', () => {
  it("INPUT: a ping to the node is accepted under the rule's rate limit, and the evidence says it was taken as not reached", () => {
    const r = iptablesVerdict('INPUT', toNode('icmp'))
    expect(r.verdict).toBe('ACCEPT')
    expect(r.evidence).toContain(
      '-A INPUT -p icmp -m icmp --icmp-type 8 -m limit --limit 10/sec --limit-burst 20 -j ACCEPT    (a rate limit of 10/sec: taken as not reached)',
    )
  })

  it('INPUT: ICMP type/code pairs; the other codes of the type fall to the drop', () => {
    expect(iptablesVerdict('INPUT', toNode('icmp', {icmp: {type: 3, code: 4}})).verdict).toBe('ACCEPT')
    expect(iptablesVerdict('INPUT', toNode('icmp', {icmp: {type: 11, code: 1}})).verdict).toBe('ACCEPT')
    const port = iptablesVerdict('INPUT', toNode('icmp', {icmp: {type: 3, code: 3}}))
    expect(port.verdict).toBe('DROP')
    expect(port.rule!.raw).toBe('-A LOGDROP -j DROP')
  })

  it('INPUT: a new connection must open with a SYN; a segment with no flags is dropped; ssh is let in', () => {
    const ackOnly = iptablesVerdict('INPUT', toNode('tcp', {dport: 22, tcpFlags: 0x10}))
    expect(ackOnly.verdict).toBe('DROP')
    expect(ackOnly.rule!.raw).toContain('--ctstate NEW -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j DROP')
    const xmas = iptablesVerdict('INPUT', toNode('tcp', {dport: 22, ctstate: 'ESTABLISHED', tcpFlags: 0}))
    expect(xmas.verdict).toBe('ACCEPT') // ESTABLISHED comes first, as the kernel reads the chain
    expect(iptablesVerdict('INPUT', toNode('tcp', {dport: 22})).verdict).toBe('ACCEPT')
    expect(iptablesVerdict('INPUT', toNode('tcp', {dport: 80})).rule!.raw).toBe('-A LOGDROP -j DROP')
  })

  it('INPUT: VXLAN from the node range is let in (iprange); a unicast packet is no broadcast', () => {
    const vxlan = toNode('udp', {src: '172.31.0.12', sport: 38000, dport: 8472})
    expect(iptablesVerdict('INPUT', vxlan).verdict).toBe('ACCEPT')
    const stranger = iptablesVerdict('INPUT', {...vxlan, src: '172.31.0.99'})
    expect(stranger.verdict).toBe('DROP')
    // the broadcast rule was passed over, not guessed at: the drop is the log-and-drop chain's
    expect(stranger.rule!.raw).toBe('-A LOGDROP -j DROP')
  })

  it('FORWARD: an echo request passes; with one hop left it is dropped (ttl); a too-long one is dropped (length)', () => {
    expect(iptablesVerdict('FORWARD', packet('icmp')).rule!.raw).toBe('-A FORWARD -p icmp -j ACCEPT')
    expect(iptablesVerdict('FORWARD', packet('icmp', {ttl: 1})).rule!.raw).toBe('-A FORWARD -m ttl --ttl-lt 2 -j DROP')
    expect(iptablesVerdict('FORWARD', packet('icmp', {length: 1500})).rule!.raw).toBe('-A LOGDROP -j DROP')
    expect(iptablesVerdict('FORWARD', packet('icmp', {length: 1400})).verdict).toBe('ACCEPT')
  })

  it('FORWARD: an echo reply no connection expects is not an echo request (! --icmp-type 8); tracked, it passes', () => {
    const stray = iptablesVerdict('FORWARD', packet('icmp', {reply: true, ctstate: 'NEW'}))
    expect(stray.verdict).toBe('DROP')
    expect(stray.evidence).toContain('-A FORWARD -p icmp -m icmp ! --icmp-type 8 -j LOGDROP')
    expect(iptablesVerdict('FORWARD', packet('icmp', {reply: true})).verdict).toBe('ACCEPT')
  })

  it('FORWARD: a SYN passes under the hashlimit; a SYN-ACK with no connection is not a SYN and meets the policy', () => {
    const syn = iptablesVerdict('FORWARD', packet('tcp'))
    expect(syn.verdict).toBe('ACCEPT')
    expect(syn.rule!.raw).toContain('--hashlimit-upto 50/sec')
    expect(syn.evidence.at(-1)).toMatch(/\(a rate limit of 50\/sec: taken as not reached\)$/)
    const synAck = iptablesVerdict('FORWARD', packet('tcp', {reply: true, ctstate: 'NEW'}))
    expect(synAck).toMatchObject({verdict: 'DROP', chain: 'FORWARD'})
    expect(synAck.rule).toBeUndefined()
  })

  it('FORWARD: UDP by its TOS byte: DSCP CS1 and Minimize-Delay are dropped, the default passes', () => {
    expect(iptablesVerdict('FORWARD', packet('udp')).rule!.raw).toBe('-A FORWARD -p udp -j ACCEPT')
    expect(iptablesVerdict('FORWARD', packet('udp', {tos: 8 << 2})).verdict).toBe('DROP')
    expect(iptablesVerdict('FORWARD', packet('udp', {tos: 0x10})).verdict).toBe('DROP')
  })

  it('connlimit (as iptables-save prints it): the flow is taken to be within the count, and the evidence says so', () => {
    const t = save(
      '-A INPUT -p tcp -m tcp --dport 22 -m connlimit --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with icmp-port-unreachable',
      '-A INPUT -p tcp -m tcp --dport 80 -m connlimit --connlimit-upto 10 --connlimit-mask 24 --connlimit-saddr -j ACCEPT',
      '-A INPUT -j DROP',
    )
    const ssh = evaluateChain(t, 'INPUT', toNode('tcp', {dport: 22}))!
    expect(ssh).toMatchObject({verdict: 'DROP', uncertain: []})
    expect(ssh.rule!.raw).toBe('-A INPUT -j DROP')
    const web = evaluateChain(t, 'INPUT', toNode('tcp', {dport: 80}))!
    expect(web).toMatchObject({verdict: 'ACCEPT', uncertain: []})
    expect(web.evidence[0]).toMatch(
      /--connlimit-upto 10 .* -j ACCEPT {4}\(at most 10 connections: taken as not exceeded\)$/,
    )
  })

  it('a header the walk does not know stays unknown (a packet from a check, not a trace)', () => {
    const {icmp: _icmp, ...noType} = packet('icmp')
    const r = evaluateChain(ipt, 'FORWARD', noType)!
    expect(r.uncertain.map((u) => u.rule.raw)).toContain('-A FORWARD -p icmp -m icmp ! --icmp-type 8 -j LOGDROP')
  })
})

describe('nftables: the same host as a native table (nft -j list ruleset)', () => {
  it('input: established and related replies are accepted by `ct state established,related` (a list, not a set)', () => {
    const r = nftVerdict('input', toNode('tcp', {reply: true, sport: 22, dport: 40000}))
    expect(r.verdict).toBe('accept')
    expect(r.rule!.text).toBe('ct state established,related accept')
  })

  it('input: a ping under its rate limit; ICMP types by name in a set; new connections open with a SYN', () => {
    const ping = nftVerdict('input', toNode('icmp'))
    expect(ping.verdict).toBe('accept')
    expect(ping.evidence.at(-1)).toMatch(/\(a rate limit of 10\/second: taken as not reached\)$/)
    expect(nftVerdict('input', toNode('icmp', {icmp: {type: 11, code: 0}})).verdict).toBe('accept')
    expect(nftVerdict('input', toNode('icmp', {icmp: {type: 5, code: 0}})).verdict).toBe('drop')
    const ackOnly = nftVerdict('input', toNode('tcp', {dport: 22, tcpFlags: 0x10}))
    expect(ackOnly.verdict).toBe('drop')
    expect(ackOnly.rule!.expr.some((e) => 'drop' in e)).toBe(true)
    expect(nftVerdict('input', toNode('tcp', {dport: 22})).verdict).toBe('accept')
  })

  it('input: VXLAN from the node range (an address range), not from elsewhere; a unicast packet is no broadcast', () => {
    const vxlan = toNode('udp', {src: '172.31.0.12', sport: 38000, dport: 8472})
    expect(nftVerdict('input', vxlan).verdict).toBe('accept')
    const stranger = nftVerdict('input', {...vxlan, src: '172.31.0.99'})
    expect(stranger.verdict).toBe('drop')
    expect(stranger.rule).toBeUndefined() // the chain's policy: the broadcast rule did not match
  })

  it('forward: ttl, length and `icmp type !=` decide an echo request; a reply is tracked', () => {
    expect(nftVerdict('forward', packet('icmp')).verdict).toBe('accept')
    expect(nftVerdict('forward', packet('icmp', {ttl: 1})).verdict).toBe('drop')
    expect(nftVerdict('forward', packet('icmp', {length: 1500})).verdict).toBe('drop')
    expect(nftVerdict('forward', packet('icmp', {reply: true})).verdict).toBe('accept')
    expect(nftVerdict('forward', packet('icmp', {reply: true, ctstate: 'NEW'})).verdict).toBe('drop')
  })

  it('forward: `tcp flags syn / fin,syn,rst,ack` with a rate limit takes the SYN; a SYN-ACK with no connection is dropped', () => {
    const syn = nftVerdict('forward', packet('tcp'))
    expect(syn.verdict).toBe('accept')
    expect(syn.evidence.at(-1)).toMatch(
      /limit rate 50\/second burst 100 packets accept {4}\(a rate limit of 50\/second/,
    )
    const synAck = nftVerdict('forward', packet('tcp', {reply: true, ctstate: 'NEW', dport: 8080, sport: 40000}))
    expect(synAck.verdict).toBe('drop')
    expect(synAck.rule!.text).toBe('tcp dport != 5201 drop')
  })

  it('`ct count` (as nft -j prints it): within the count it matches, `over` it does not, said so', () => {
    const [table] = parseNftRuleset(
      JSON.stringify({
        nftables: [
          {table: {family: 'inet', name: 't', handle: 1}},
          {
            chain: {
              family: 'inet',
              table: 't',
              name: 'f',
              handle: 1,
              type: 'filter',
              hook: 'forward',
              prio: 0,
              policy: 'drop',
            },
          },
          {
            rule: {
              family: 'inet',
              table: 't',
              chain: 'f',
              handle: 2,
              expr: [
                {match: {op: '==', left: {meta: {key: 'l4proto'}}, right: 'tcp'}},
                {'ct count': {val: 10, inv: true}},
                {drop: null},
              ],
            },
          },
          {
            rule: {
              family: 'inet',
              table: 't',
              chain: 'f',
              handle: 3,
              expr: [
                {match: {op: '==', left: {payload: {protocol: 'tcp', field: 'dport'}}, right: 8080}},
                {'ct count': {val: 3}},
                {accept: null},
              ],
            },
          },
        ],
      }),
    ).tables
    const r = evaluateNftChain(table!, table!.chains[0]!, packet('tcp'))
    expect(r).toMatchObject({verdict: 'accept', uncertain: []})
    expect(r.evidence).toEqual(['tcp dport 8080 ct count 3 accept    (at most 3 connections: taken as not exceeded)'])
  })

  it('forward: a UDP datagram is not matched by `tcp dport != 5201` (nft checks the protocol first); DSCP by name', () => {
    const dns = nftVerdict('forward', packet('udp'))
    expect(dns.verdict).toBe('accept')
    expect(dns.rule!.text).toBe('meta l4proto udp accept')
    expect(nftVerdict('forward', packet('udp', {tos: 8 << 2})).rule!.text).toBe('ip dscp cs1 drop')
  })
})

/** The iptables-mode Service lab with `lines` inserted at the top of a node's filter chain, as `iptables -I` does. */
function withRules(node: string, chain: string, ...lines: string[]): Snapshot {
  const s = snapshotFixture('flannel-vxlan-services-iptables-lab')
  const filter = s.nodeStates[node]!.iptables!.tables.find((t) => t.name === 'filter')!
  const rules = parseIptablesSave(['*filter', ...lines, 'COMMIT', ''].join('\n')).tables[0]!.chains[0]!.rules
  filter.chains.find((c) => c.name === chain)!.rules.unshift(...rules)
  return s
}

const walk = (s: Snapshot, protocol: Protocol = 'icmp', size = 84): Trace =>
  flow(s, 'pod-node1-1', 'pod-node2-1', protocol, {size})

const ends = (t: Trace) => [t.disposition, t.returnPath?.disposition]

describe('the walk: the header fields each hook sees', () => {
  it('an ICMP type rule drops the ping and only the ping; nothing is left uncertain', () => {
    const s = withRules('node1', 'FORWARD', '-A FORWARD -p icmp -m icmp --icmp-type 8 -j DROP')
    const ping = walk(s)
    expect(ends(ping)).toEqual(['DENIED', undefined])
    expect(ping.hops.at(-1)!.evidence).toContain('-A FORWARD -p icmp -m icmp --icmp-type 8 -j DROP')
    expect(ping.findings.map((f) => f.code)).toContain('FIREWALL_DROP')
    expect(ends(walk(s, 'tcp'))).toEqual(['DELIVERED', 'DELIVERED'])
    expect(ends(walk(s, 'udp'))).toEqual(['DELIVERED', 'DELIVERED'])
  })

  it('a SYN-ACK rule lets the SYN through and drops the reply where it crosses node1', () => {
    const t = walk(withRules('node1', 'FORWARD', '-A FORWARD -p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK -j DROP'), 'tcp')
    expect(ends(t)).toEqual(['DELIVERED', 'DENIED'])
    expect(t.returnPath!.hops.at(-1)).toMatchObject({node: 'node1'})
    expect(
      ends(walk(withRules('node1', 'FORWARD', '-A FORWARD -p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK -j DROP'))),
    ).toEqual(['DELIVERED', 'DELIVERED'])
  })

  it("TTL as FORWARD sees it, after the node's decrement: 63 on node1, 62 on node2; the reply 63 on node2", () => {
    const ttl = (node: string, n: number) =>
      withRules(node, 'FORWARD', `-A FORWARD -p icmp -m ttl --ttl-eq ${n} -j DROP`)
    expect(ends(walk(ttl('node1', 63)))).toEqual(['DENIED', undefined])
    expect(ends(walk(ttl('node1', 64)))).toEqual(['DELIVERED', 'DELIVERED'])
    expect(ends(walk(ttl('node2', 62)))).toEqual(['DENIED', undefined])
    const reply = walk(ttl('node2', 63))
    expect(ends(reply)).toEqual(['DELIVERED', 'DENIED'])
    expect(reply.returnPath!.hops.at(-1)).toMatchObject({node: 'node2'})
  })

  it('length: the size the trace sends (--size)', () => {
    const s = withRules('node1', 'FORWARD', '-A FORWARD -m length --length 1000:65535 -j DROP')
    expect(ends(walk(s))).toEqual(['DELIVERED', 'DELIVERED'])
    expect(ends(walk(s, 'icmp', 1228))).toEqual(['DENIED', undefined])
  })

  it("nftables: the host's own table beside kube-proxy's (forward policy drop): every flow passes as its rules say", () => {
    const s = snapshotFixture('flannel-vxlan-services-nftables-lab')
    for (const n of ['node1', 'node2'])
      s.nodeStates[n]!.nft!.tables.push(...parseNftRuleset(fixture('nft', 'host-firewall.json')).tables)
    for (const protocol of ['icmp', 'tcp', 'udp'] as const) {
      const t = walk(s, protocol)
      expect(ends(t), protocol).toEqual(['DELIVERED', 'DELIVERED'])
      expect(
        t.findings.map((f) => f.code),
        protocol,
      ).not.toContain('INSUFFICIENT_INFO')
    }
    const big = walk(s, 'icmp', 1500)
    expect(ends(big)).toEqual(['DENIED', undefined])
    expect(big.hops.at(-1)!.evidence).toContain('ip length 1401-65535 drop')
  })
})

describe("ufw's chains (a ufw lab node's iptables-save, fixtures/iptables/ufw-node.txt)", () => {
  /** the Service lab with node1's rules those of a ufw node, and `extra` appended (as `ufw route deny` writes them) */
  function ufwNode(...extra: string[]): Snapshot {
    const s = snapshotFixture('flannel-vxlan-services-iptables-lab')
    const text = fixture('iptables', 'ufw-node.txt').replace(
      '-A ufw-user-forward',
      [...extra, '-A ufw-user-forward'].join('\n'),
    )
    s.nodeStates.node1!.iptables = parseIptablesSave(extra.length ? text : fixture('iptables', 'ufw-node.txt'))
    return s
  }

  it('a healthy ufw node passes ping, TCP and UDP, sure of every rule', () => {
    for (const protocol of ['icmp', 'tcp', 'udp'] as const) {
      const t = walk(ufwNode(), protocol)
      expect(ends(t), protocol).toEqual(['DELIVERED', 'DELIVERED'])
      expect(t.findings.filter((f) => f.severity === 'error').map((f) => f.code)).toEqual([])
    }
  })

  it("a ufw user rule's drop: the fix is ufw's (delete the rule by number, or route-allow the flow), not iptables'", () => {
    const s = ufwNode()
    const filter = s.nodeStates.node1!.iptables!.tables.find((x) => x.name === 'filter')!
    const forward = filter.chains.find((c) => c.name === 'ufw-user-forward')!
    forward.rules.push(
      ...parseIptablesSave('*filter\n-A ufw-user-forward -d 172.20.2.2/32 -p tcp -m tcp --dport 8080 -j DROP\nCOMMIT\n')
        .tables[0]!.chains[0]!.rules,
    )
    const t = walk(s, 'tcp')
    expect(ends(t)).toEqual(['DENIED', undefined])
    const f = t.findings.find((x) => x.code === 'FIREWALL_DROP')!
    expect(f.message).toBe(
      "-A ufw-user-forward -d 172.20.2.2/32 -p tcp -m tcp --dport 8080 -j DROP (ufw's chain ufw-user-forward) drops tcp 172.20.1.2 → 172.20.2.2:8080 on node1",
    )
    expect(f.fix.split('\n')).toEqual([
      "# ufw's ufw-user-forward drops it: -A ufw-user-forward -d 172.20.2.2/32 -p tcp -m tcp --dport 8080 -j DROP",
      'ufw status verbose',
      '# a rule of yours denies it: find its number, then delete it',
      'ufw status numbered',
      'ufw delete NUMBER',
      '# let this flow through',
      'ufw route allow proto tcp from 172.20.1.2 to 172.20.2.2 port 8080',
    ])
    expect(ends(walk(s))).toEqual(['DELIVERED', 'DELIVERED'])
  })

  it("the INPUT policy ufw set: a pod's connection to an unopened port of another node; the fix allows it through ufw", () => {
    const t = flow(ufwNode(), 'pod-node2-1', 'node1', 'tcp', {port: 9100})
    expect(ends(t)).toEqual(['DENIED', undefined])
    const f = t.findings.find((x) => x.code === 'FIREWALL_DROP')!
    // flanneld masquerades a pod's traffic to a node's address: it arrives from node2's
    expect(f.message).toBe('-P INPUT DROP drops tcp 172.31.0.12 → 172.31.0.11:9100 on node1')
    expect(f.fix).toContain('ufw allow proto tcp from 172.31.0.12 to any port 9100')
    expect(f.fix).not.toContain('iptables')
  })
})
