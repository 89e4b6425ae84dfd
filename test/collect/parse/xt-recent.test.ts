import {describe, expect, it} from 'vitest'

import {ParseError} from '../../../src/collect/parse/errors.js'
import {jiffiesHz, parseXtRecent} from '../../../src/collect/parse/xt-recent.js'
import {fixture} from '../../helpers/fixtures.js'

describe('parseXtRecent (/proc/net/xt_recent with the kernel clock)', () => {
  const text = fixture('xt-recent', 'kube-proxy-node1.txt')

  it("reads every list of a kube-proxy node, its clients' packet times, and the kernel's HZ", () => {
    const r = parseXtRecent(text)
    expect(r.jiffies).toBe(4299607350)
    // 250 on the kernel the fixture was taken on: 2^32 - 300·250 + 250·18860.295 ≈ 4299607370
    expect(r.hz).toBe(250)
    expect(r.tables.map((t) => [t.name, t.entries.length])).toEqual([
      ['KUBE-SEP-FSIZ4XXJVT7RVTNO', 1],
      ['KUBE-SEP-JIQVO3ZP6MGKT3A5', 1],
      ['KUBE-SEP-K3ONOJLFIWKSRTBE', 0],
    ])
    expect(r.tables[1]!.entries[0]).toEqual({
      address: '172.20.1.3',
      ttl: 64,
      lastSeen: 4299607349,
      stamps: [4299607347, 4299607349, 4299607349],
    })
  })

  it('HZ is the one of 100, 250, 300 and 1000 that fits; none when jiffies do not fit the monotonic clock', () => {
    for (const hz of [100, 250, 300, 1000]) {
      const seconds = 86_400.5
      expect(jiffiesHz(Math.round(2 ** 32 + hz * (seconds - 300)), seconds * 1e9)).toBe(hz)
    }
    expect(jiffiesHz(123_456, 86_400e9)).toBeUndefined()
  })

  it('without the clock lines the lists are still read (their ages unknown); a stray line is an error', () => {
    const lists = text
      .split('\n')
      .filter((l) => !/^(now at|jiffies:)/.test(l))
      .join('\n')
    const r = parseXtRecent(lists)
    expect(r.jiffies).toBeUndefined()
    expect(r.hz).toBeUndefined()
    expect(r.tables).toHaveLength(3)
    expect(() => parseXtRecent('src=10.0.0.1 ttl: 64 last_seen: 1 oldest_pkt: 1 1')).toThrow(ParseError)
    expect(() => parseXtRecent(`${text}\nsomething else`)).toThrow(/not an xt_recent line/)
  })
})
