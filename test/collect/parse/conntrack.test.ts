import {describe, expect, it} from 'vitest'

import {parseConntrackCounters, parseConntrackEntries} from '../../../src/collect/parse/conntrack.js'
import {fixture, sectionOf} from '../../helpers/fixtures.js'

// `conntrack -L -o extended` on a calico-vxlan lab node after pings (one masqueraded by
// cali-nat-outgoing), plus a DNATed Service connection in the same format.
describe('conntrack', () => {
  it('entries: both tuples, state, timeout, flags, mark; the reply shows the translation', () => {
    const {entries, truncated, limit} = parseConntrackEntries(fixture('conntrack', 'lab-node1.txt'))
    expect(limit).toBe(2000)
    expect(truncated).toBeUndefined()
    expect(entries[0]).toMatchObject({
      family: 'inet',
      protocol: 'tcp',
      state: 'ESTABLISHED',
      timeout: 431971,
      flags: ['ASSURED'],
      mark: 0,
      orig: {src: '172.31.0.11', dst: '172.31.0.12', sport: 179, dport: 50215},
    })
    expect(entries[1]).toMatchObject({protocol: 'udp', flags: ['UNREPLIED'], orig: {dport: 4789}})
    expect(entries[1]!.state).toBeUndefined()
    const masq = entries.find((e) => e.protocol === 'icmp' && e.orig.dst === '172.31.0.12')!
    expect(masq.orig).toEqual({src: '172.20.1.2', dst: '172.31.0.12', type: 8, code: 0, id: 17472})
    expect(masq.reply.dst).toBe('172.31.0.11')
    const dnat = entries.at(-1)!
    expect(dnat).toMatchObject({orig: {dst: '10.96.0.20', dport: 80}, reply: {src: '172.20.1.3', sport: 80}, zone: 0})
  })

  it('more lines than the limit: cut at the limit and said so', () => {
    const {entries, truncated} = parseConntrackEntries(fixture('conntrack', 'lab-node1-limit2.txt'))
    expect(entries.length).toBe(2)
    expect(truncated).toBe(true)
  })

  it('`limit N dnat`: the probe listed only translated flows (Service flows), and says so', () => {
    const {entries, limit, filter} = parseConntrackEntries(
      `limit 10 dnat\n${fixture('conntrack', 'lab-node1.txt').split('\n').at(-2)}\n`,
    )
    expect({limit, filter, n: entries.length}).toEqual({limit: 10, filter: 'dnat', n: 1})
    expect(parseConntrackEntries(fixture('conntrack', 'lab-node1.txt')).filter).toBeUndefined()
  })

  it('counters', () => {
    expect(
      parseConntrackCounters(
        '/proc/sys/net/netfilter/nf_conntrack_count:4\n/proc/sys/net/netfilter/nf_conntrack_max:262144\n',
      ),
    ).toEqual({count: 4, max: 262144})
    expect(parseConntrackCounters(sectionOf('calico-vxlan-netfilter-node1.out', 'conntrack-counters')).max).toBe(262144)
  })

  it('the probe section of a lab node parses', () => {
    expect(
      parseConntrackEntries(sectionOf('calico-vxlan-netfilter-node1.out', 'conntrack')).entries.length,
    ).toBeGreaterThan(0)
  })

  it('malformed and truncated output is an error', () => {
    expect(() => parseConntrackEntries(fixture('conntrack', 'truncated.txt'))).toThrow(
      /line 2: entry without both tuples/,
    )
    expect(() => parseConntrackEntries('ipv4 2 tcp 6 1 src=1.1.1.1 dst=2.2.2.2 src=2.2.2.2 dst=1.1.1.1\n')).toThrow(
      /limit N/,
    )
    expect(() => parseConntrackEntries('limit 5\nconntrack v1.4.7: Operation failed\n')).toThrow(/ipv4 or ipv6/)
    expect(() => parseConntrackCounters('')).toThrow(/neither/)
  })
})
