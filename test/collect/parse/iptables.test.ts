import {describe, expect, it} from 'vitest'

import {ParseError} from '../../../src/collect/parse/errors.js'
import {parseIptablesSave, parseRule, tokenize} from '../../../src/collect/parse/iptables.js'
import {fixture} from '../../helpers/fixtures.js'

// Captured with iptables-nft-save -c / iptables-legacy-save -c from a lab node after
// restoring flannel- and kube-proxy-shaped rules into it and sending a few pings.
const nft = parseIptablesSave(fixture('iptables', 'flannel-kube-proxy-nft.txt'))
const legacy = parseIptablesSave(fixture('iptables', 'calico-legacy.txt'), {
  section: 'iptables-legacy',
  variant: 'legacy',
})
const chain = (t: string, c: string) => nft.tables.find((x) => x.name === t)!.chains.find((x) => x.name === c)!

describe('iptables-save -c', () => {
  it('knows the variant from the header', () => {
    expect(nft.variant).toBe('nft')
    expect(legacy.variant).toBe('legacy')
    expect(parseIptablesSave(fixture('iptables', 'old-syntax-legacy.txt')).variant).toBe('legacy')
  })

  it('tables, chains, policies with counters; user chains without a policy', () => {
    expect(nft.tables.map((t) => t.name)).toEqual(['filter', 'nat'])
    expect(chain('filter', 'FORWARD')).toMatchObject({policy: 'DROP', packets: 0, bytes: 0})
    expect(chain('filter', 'INPUT').policy).toBe('ACCEPT')
    expect(chain('filter', 'INPUT').packets).toBeGreaterThan(0)
    expect(chain('filter', 'FLANNEL-FWD').policy).toBeUndefined()
  })

  it('rules in file order with [packets:bytes] and the raw text without the counters', () => {
    const fwd = chain('filter', 'FORWARD').rules
    expect(fwd.map((r) => r.target)).toEqual(['KUBE-FORWARD', 'FLANNEL-FWD', 'ACCEPT', 'ACCEPT', 'REJECT'])
    expect(fwd[0]!.raw).toBe('-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD')
    expect(fwd[0]!.packets).toBeGreaterThan(0)
    expect(fwd[0]!.bytes).toBeGreaterThan(fwd[0]!.packets!)
  })

  it('common matches: -s/-d/-i/-o/-p, --dport/--sport, comments, conntrack and state', () => {
    const flannel = chain('filter', 'FLANNEL-FWD').rules
    expect(flannel[0]!.match).toEqual({source: '172.20.0.0/16', comment: 'flanneld forward'})
    expect(flannel[1]!.match.destination).toBe('172.20.0.0/16')
    const input = chain('filter', 'INPUT').rules
    expect(input[1]!.match).toMatchObject({
      inInterface: 'eth0',
      protocol: 'udp',
      dport: '8472',
      comment: 'flannel vxlan',
    })
    expect(input[2]!.match).toMatchObject({protocol: 'tcp', ctstate: ['NEW'], dport: '179'})
    expect(chain('filter', 'KUBE-FORWARD').rules[2]!.match.ctstate).toEqual(['RELATED', 'ESTABLISHED'])
  })

  it('negation with ! is recorded per field', () => {
    const input = chain('filter', 'INPUT').rules
    expect(input[3]!.match).toMatchObject({source: '127.0.0.0/8', inInterface: 'lo', negated: ['inInterface']})
    const fw = chain('filter', 'KUBE-FIREWALL').rules[0]!
    expect(fw.match).toMatchObject({
      source: '127.0.0.0/8',
      destination: '127.0.0.0/8',
      ctstate: ['RELATED', 'ESTABLISHED', 'DNAT'],
      negated: ['source', 'ctstate'],
    })
    const fwdCni = chain('filter', 'FORWARD').rules[2]!
    expect(fwdCni.match).toMatchObject({inInterface: 'cni0', outInterface: 'cni0', negated: ['outInterface']})
  })

  it('-g is a goto; target options are kept; unmodeled matches go to other', () => {
    const out = chain('filter', 'OUTPUT').rules[0]!
    expect(out).toMatchObject({target: 'KUBE-FIREWALL', goto: true})
    expect(out.match).toMatchObject({sport: '8472', negated: ['sport']})
    const reject = chain('filter', 'FORWARD').rules[4]!
    expect(reject.targetArgs).toEqual(['--reject-with', 'icmp-port-unreachable'])
    expect(reject.match.dport).toBe('6443,10250')
    const mark = chain('filter', 'KUBE-FORWARD').rules[1]!
    expect(mark.match.other).toEqual(['mark --mark 0x4000/0x4000'])
    const masq = chain('nat', 'FLANNEL-POSTRTG').rules.at(-1)!
    expect(masq).toMatchObject({target: 'MASQUERADE', targetArgs: ['--random-fully']})
    expect(masq.match).toMatchObject({source: '172.20.0.0/16', destination: '224.0.0.0/4', negated: ['destination']})
    const dnat = chain('nat', 'KUBE-SEP-ABCDEF').rules[0]!
    expect(dnat.targetArgs).toEqual(['--to-destination', '172.31.0.11:6443'])
  })

  it('Calico chains in the legacy tables', () => {
    const fwd = legacy.tables[0]!.chains.find((c) => c.name === 'CALI-FORWARD')!
    expect(fwd.rules.map((r) => r.match.comment)).toEqual(['cali:vjrMJCRpqwy5oRoX', 'cali:from-wl'])
    expect(fwd.rules[1]).toMatchObject({target: 'DROP', match: {inInterface: 'cali+'}})
  })

  it('old iptables: negation after the option, port ranges, protocol names, escaped quotes', () => {
    const t = parseIptablesSave(fixture('iptables', 'old-syntax-legacy.txt'))
    const fwd = t.tables[0]!.chains.find((c) => c.name === 'FORWARD')!.rules
    expect(fwd[0]!.match).toMatchObject({source: '10.244.0.0/16', outInterface: 'flannel.1', negated: ['source']})
    expect(fwd[1]!.match.dport).toBe('80:90')
    const input = t.tables[0]!.chains.find((c) => c.name === 'INPUT')!.rules
    expect(input[0]!.match.protocol).toBe('ipip')
    expect(input[1]!.match).toMatchObject({sport: '53', dport: '1024:65535', comment: 'dns "replies"'})
  })

  it('empty output (no tables loaded) is no tables', () => {
    expect(parseIptablesSave('')).toEqual({variant: 'unknown', tables: []})
  })

  it('tokenize keeps quoted words whole', () => {
    expect(tokenize('-A X -m comment --comment "a b \\"c\\"" -j Y')).toEqual([
      '-A',
      'X',
      '-m',
      'comment',
      '--comment',
      'a b "c"',
      '-j',
      'Y',
    ])
    expect(parseRule('-A X -j ACCEPT', ['-A', 'X', '-j', 'ACCEPT'])).toMatchObject({
      chain: 'X',
      target: 'ACCEPT',
      match: {},
    })
  })
})

describe('malformed iptables-save output', () => {
  it.each([
    ['truncated-no-commit.txt', /iptables: line \d+: table filter has no COMMIT/],
    ['malformed-counters.txt', /iptables: line 4: malformed counters '\[12:x\]'/],
    ['malformed-quote.txt', /iptables: line 3: unterminated quote/],
  ])('%s is a ParseError naming the line', (file, message) => {
    const run = () => parseIptablesSave(fixture('iptables', file))
    expect(run).toThrow(ParseError)
    expect(run).toThrow(message)
  })

  it('a rule outside a table and a rule without -A', () => {
    expect(() => parseIptablesSave('-A INPUT -j ACCEPT\n')).toThrow(/outside of any table/)
    expect(() => parseIptablesSave('*filter\n-I INPUT -j ACCEPT\nCOMMIT\n')).toThrow(/expected -A/)
  })

  it('a real output cut anywhere is a ParseError or a consistent prefix, never another exception', () => {
    const text = fixture('iptables', 'flannel-kube-proxy-nft.txt')
    for (let cut = 0; cut < text.length; cut += 97) {
      try {
        parseIptablesSave(text.slice(0, cut))
      } catch (error) {
        expect(error).toBeInstanceOf(ParseError)
      }
    }
  })
})
