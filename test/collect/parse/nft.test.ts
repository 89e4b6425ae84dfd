import {describe, expect, it} from 'vitest'

import {ParseError} from '../../../src/collect/parse/errors.js'
import {parseNftRuleset, renderValue} from '../../../src/collect/parse/nft.js'
import {fixture, sectionOf} from '../../helpers/fixtures.js'

// Captured from a calico-vxlan lab node holding kube-proxy's nftables table, a firewalld-style
// inet table, a bridge table, and Felix/kube-proxy iptables rules through iptables-nft.
const r = parseNftRuleset(fixture('nft', 'lab-node1.json'))
const listed = fixture('nft', 'lab-node1.nft')
  .split('\n')
  .map((l) => l.trim())
const table = (family: string, name: string) => r.tables.find((t) => t.family === family && t.name === name)!
const chain = (family: string, t: string, c: string) => table(family, t).chains.find((x) => x.name === c)!
const kp = table('ip', 'kube-proxy')

describe('nft -j list ruleset', () => {
  it('tables of every family, with nft version', () => {
    expect(r.version).toBe('1.0.6')
    expect(r.tables.map((t) => `${t.family} ${t.name}`)).toEqual([
      'ip kube-proxy',
      'inet firewalld',
      'bridge br-filter',
      'ip raw',
      'ip mangle',
      'ip nat',
      'ip filter',
    ])
  })

  it('base chains carry type, hook, numeric priority and policy; regular chains none', () => {
    expect(chain('ip', 'kube-proxy', 'nat-prerouting')).toMatchObject({
      type: 'nat',
      hook: 'prerouting',
      prio: -100,
      policy: 'accept',
    })
    expect(chain('ip', 'kube-proxy', 'filter-prerouting')).toMatchObject({
      type: 'filter',
      hook: 'prerouting',
      prio: -110,
    })
    expect(chain('ip', 'kube-proxy', 'nat-postrouting').prio).toBe(100)
    expect(chain('inet', 'firewalld', 'filter_FORWARD')).toMatchObject({hook: 'forward', prio: 10})
    expect(chain('ip', 'mangle', 'OUTPUT').type).toBe('route')
    const regular = chain('ip', 'kube-proxy', 'services')
    expect(regular.hook).toBeUndefined()
    expect(regular.prio).toBeUndefined()
  })

  it('every native rule reads as nft list prints it', () => {
    for (const t of r.tables.filter((x) => ['kube-proxy', 'firewalld', 'br-filter'].includes(x.name))) {
      for (const c of t.chains) for (const rule of c.rules) expect(listed, `${t.name} ${c.name}`).toContain(rule.text)
    }
    expect(chain('ip', 'kube-proxy', 'service-FY5PMXPG-kube-system/kube-dns/udp/dns').rules[1]!.text).toBe(
      'numgen random mod 2 vmap { 0 : goto endpoint-AAAAAAAA-kube-system/kube-dns/udp/dns__172.20.1.2/53, 1 : goto endpoint-BBBBBBBB-kube-system/kube-dns/udp/dns__172.20.2.2/53 }',
    )
  })

  it("a hardened host's own table reads as nft list prints it: flag lists, masked flags, rate limits, ICMP types", () => {
    const host = parseNftRuleset(fixture('nft', 'host-firewall.json'))
    const hostListed = fixture('nft', 'host-firewall.nft')
      .split('\n')
      .map((l) => l.trim())
    const texts = host.tables.flatMap((t) => t.chains.flatMap((c) => c.rules.map((x) => x.text)))
    expect(texts.length).toBe(23)
    for (const text of texts) expect(hostListed).toContain(text)
  })

  it('rules keep handles, comments, counters and their expressions', () => {
    const drop = chain('inet', 'firewalld', 'filter_FORWARD').rules.find((x) => x.text.endsWith('drop'))!
    expect(drop).toMatchObject({
      handle: 8,
      packets: 0,
      bytes: 0,
      text: 'ip daddr 172.20.9.9 counter packets 0 bytes 0 drop',
    })
    const rejectRule = chain('ip', 'kube-proxy', 'cluster-ips-check').rules[0]!
    expect(rejectRule.comment).toBe('Reject traffic to invalid ports of ClusterIPs')
    expect(rejectRule.text).toBe('ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"')
    expect(rejectRule.expr.map((e) => Object.keys(e)[0])).toEqual(['match', 'reject'])
  })

  it('sets and maps: key types (concatenations), verdict maps, intervals, element comments', () => {
    const ips = kp.sets.find((s) => s.name === 'service-ips')!
    expect(ips).toMatchObject({kind: 'map', type: ['ipv4_addr', 'inet_proto', 'inet_service'], map: 'verdict'})
    expect(ips.elements[0]).toEqual({
      key: {concat: ['10.96.0.10', 'udp', 53]},
      value: {goto: {target: 'service-FY5PMXPG-kube-system/kube-dns/udp/dns'}},
    })
    const none = kp.sets.find((s) => s.name === 'no-endpoint-services')!
    expect(none.elements[0]).toMatchObject({key: {concat: ['10.96.0.30', 'tcp', 80]}, comment: 'default/empty:http'})
    const ranges = kp.sets.find((s) => s.name === 'allowed-ranges')!
    expect(ranges).toMatchObject({kind: 'set', flags: ['interval']})
    expect(ranges.elements.map((e) => renderValue(e.key))).toEqual(['10.0.0.0/8', '172.16.0.0/16'])
    expect(kp.sets.find((s) => s.name === 'cluster-ips')!.elements).toEqual([{key: '10.96.0.10'}])
  })

  it('iptables-nft tables show their xt compat expressions', () => {
    const rule = chain('ip', 'filter', 'cali-INPUT').rules[0]!
    expect(rule.expr.some((e) => 'xt' in e)).toBe(true)
    expect(rule.text).toContain('xt match set')
  })

  it('the probe section of a lab node parses', () => {
    const s = parseNftRuleset(sectionOf('calico-vxlan-netfilter-node1.out', 'nftables'))
    expect(s.tables.length).toBe(7)
  })

  it('malformed and truncated output is a ParseError, not a crash', () => {
    expect(() => parseNftRuleset(fixture('nft', 'truncated.json'))).toThrow(/invalid JSON/)
    expect(() => parseNftRuleset(fixture('nft', 'rule-without-table.json'))).toThrow(/unknown table inet nosuch/)
    expect(() => parseNftRuleset('{"nftables": {}}')).toThrow(ParseError)
    expect(() => parseNftRuleset('{"nftables": [{"table": {"family": "ipx", "name": "t"}}]}')).toThrow(
      /family and a name/,
    )
    expect(() =>
      parseNftRuleset(
        '{"nftables": [{"table": {"family": "ip", "name": "t"}}, {"chain": {"family": "ip", "table": "t", "name": "c", "hook": "input"}}]}',
      ),
    ).toThrow(/without a priority/)
  })
})
