import {describe, expect, it} from 'vitest'

import {type Cidr, cidrContains, ipFromBytes, maskIp, mustIp, parseCidr} from '../../src/analyze/ip.js'
import {PrefixTrie} from '../../src/analyze/prefix-trie.js'
import {seededRandom as rng} from '../helpers/random.js'

function randomCidr(next: () => number, bytes: number, near?: Uint8Array): Cidr {
  const b = new Uint8Array(bytes)
  for (let i = 0; i < bytes; i++) b[i] = near && next() < 0.8 ? (near[i] as number) : Math.floor(next() * 256)
  const len = Math.floor(next() * (bytes * 8 + 1))
  return {ip: maskIp(ipFromBytes(b), len), len}
}

describe('PrefixTrie', () => {
  it('finds every containing prefix, longest first, as a linear scan does (IPv4 and IPv6, random tables)', () => {
    for (const bytes of [4, 16]) {
      const next = rng(bytes === 4 ? 42 : 4242)
      const trie = new PrefixTrie<number>(bytes === 4 ? 32 : 128)
      const base = new Uint8Array(bytes).map(() => Math.floor(next() * 256))
      const stored: Array<{c: Cidr; id: number}> = []
      for (let id = 0; id < 600; id++) {
        // clustered around one address so prefixes nest and fork a lot
        const c = randomCidr(next, bytes, base)
        trie.insert(c.ip, c.len, id)
        stored.push({c, id})
      }
      expect(trie.size).toBe(600)
      for (let k = 0; k < 400; k++) {
        const probe = randomCidr(next, bytes, base).ip
        const expected = stored.filter((s) => cidrContains(s.c, probe)).sort((a, b) => b.c.len - a.c.len || a.id - b.id)
        const got = trie.matches(probe).flatMap((m) => m.values.map((id) => ({len: m.len, id})))
        expect(got).toEqual(expected.map((e) => ({len: e.c.len, id: e.id})))
      }
    }
  })

  it('keeps several values on one prefix in insertion order, whatever order prefixes arrive in', () => {
    const orders = [
      ['172.16.0.0/16', '172.16.2.0/24', '0.0.0.0/0', '172.16.2.0/24'],
      ['172.16.2.0/24', '0.0.0.0/0', '172.16.2.0/24', '172.16.0.0/16'],
    ]
    for (const order of orders) {
      const trie = new PrefixTrie<string>(32)
      order.forEach((p, i) => {
        const c = parseCidr(p) as Cidr
        trie.insert(c.ip, c.len, `${p}#${i}`)
      })
      const m = trie.matches(mustIp('172.16.2.3'))
      expect(m.map((x) => `${x.prefix.text}/${x.len}`)).toEqual(['172.16.2.0/24', '172.16.0.0/16', '0.0.0.0/0'])
      expect(m[0]?.values.map((v) => v.split('#')[0])).toEqual(['172.16.2.0/24', '172.16.2.0/24'])
      expect(trie.longest(mustIp('172.25.9.9'))?.len).toBe(0)
      expect(trie.matches(mustIp('172.16.3.1')).map((x) => x.len)).toEqual([16, 0])
    }
  })

  it('answers exact-prefix questions and lists its entries', () => {
    const trie = new PrefixTrie<number>(32)
    for (const [i, p] of ['172.20.1.0/24', '172.20.0.0/16', '172.20.1.128/25', '172.20.1.0/32'].entries()) {
      const c = parseCidr(p) as Cidr
      trie.insert(c.ip, c.len, i)
    }
    expect(trie.exact(mustIp('172.20.1.0'), 24)).toEqual([0])
    expect(trie.exact(mustIp('172.20.1.77'), 24)).toEqual([0])
    expect(trie.exact(mustIp('172.20.2.0'), 24)).toEqual([])
    expect(trie.exact(mustIp('172.20.0.0'), 17)).toEqual([])
    expect([...trie.entries()].map((e) => `${e.prefix.text}/${e.len}`).sort()).toEqual([
      '172.20.0.0/16',
      '172.20.1.0/24',
      '172.20.1.0/32',
      '172.20.1.128/25',
    ])
    // an address of the other family matches nothing
    expect(trie.matches(mustIp('fd00::1'))).toEqual([])
  })
})
