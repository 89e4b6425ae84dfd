import {describe, expect, it} from 'vitest'

import {
  type Cidr,
  cidrContains,
  ipFromBytes,
  ipv4ToNumber,
  isCanonicalIPv4,
  maskIp,
  mustIp,
  numberToIPv4,
  parseCidr,
  parsePrefix,
} from '../../src/analyze/ip.js'
import {PrefixTable4, PrefixTrie} from '../../src/analyze/prefix-trie.js'
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

describe("PrefixTable4 (the forwarding model's IPv4 tables)", () => {
  it('finds what the trie finds: every containing prefix, longest first, values in insertion order, same prefixes', () => {
    const next = rng(7)
    const trie = new PrefixTrie<number>(32)
    const table = new PrefixTable4<number>()
    const base = new Uint8Array(4).map(() => Math.floor(next() * 256))
    for (let id = 0; id < 800; id++) {
      // host bits left set on purpose: both clear them
      const c = randomCidr(next, 4, base)
      const b = c.ip.bytes
      trie.insert(c.ip, c.len, id)
      table.insert(((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0, c.len, id)
    }
    expect(table.size).toBe(trie.size)
    for (let k = 0; k < 500; k++) {
      const probe = randomCidr(next, 4, base).ip
      const shape = (ms: ReturnType<typeof trie.matches>) =>
        ms.map((m) => ({prefix: m.prefix.text, len: m.len, values: m.values}))
      expect(shape(table.matches(probe))).toEqual(shape(trie.matches(probe)))
    }
    const all = (it: Iterable<{prefix: {text: string}; len: number; values: number[]}>) =>
      [...it].map((e) => `${e.prefix.text}/${e.len} ${e.values.join(',')}`)
    expect(all(table.entries())).toEqual(all(trie.entries()))
    expect(table.matches(mustIp('2001:db8::1'))).toEqual([])
  })

  it('parsePrefix reads the plain form digit by digit and leaves the rest to the strict reading, with the same answers', () => {
    const cases: Array<[string, {net: number; len: number} | undefined]> = [
      ['10.244.1.0/24', {net: 0x0af40100, len: 24}],
      ['10.244.1.7/24', {net: 0x0af40100, len: 24}],
      ['10.244.1.7', {net: 0x0af40107, len: 32}],
      ['0.0.0.0/0', {net: 0, len: 0}],
      ['255.255.255.255/32', {net: 0xffffffff, len: 32}],
      ['010.1.2.3/8', {net: 0x0a000000, len: 8}],
      ['10.244.1.0/33', undefined],
      ['10.244.1.0/', undefined],
      ['10.244.1.0/024', undefined],
      ['256.1.1.1/8', undefined],
      ['1.2.3/8', undefined],
      ['1.2.3.4.5/8', undefined],
      ['1..3.4', undefined],
      [' 10.0.0.0/8', undefined],
      ['default', undefined],
      ['fe80::/64', undefined],
      ['1.2.3.4/24/7', {net: 0x01020300, len: 24}],
    ]
    for (const [text, want] of cases) expect(parsePrefix(text) && {...parsePrefix(text)}, text).toEqual(want)
  })

  it('isCanonicalIPv4: exactly the dotted quads numberToIPv4 writes back as they are (a neighbour index keys them by their own text)', () => {
    const texts = [
      '10.244.1.7',
      '0.0.0.0',
      '255.255.255.255',
      '172.31.0.11',
      '1.2.3.4',
      '010.1.2.3',
      '10.01.2.3',
      '10.1.2.00',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '1..3.4',
      '1.2.3.',
      '.1.2.3',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '1.2.3.4/32',
      '1.2.3.1000',
      '',
      'fe80::1',
      '::ffff:1.2.3.4',
      '1.2.3.4a',
    ]
    const next = rng(7)
    for (let i = 0; i < 2000; i++) texts.push(numberToIPv4(Math.floor(next() * 2 ** 32)))
    for (const t of texts) {
      const n = ipv4ToNumber(t)
      expect(isCanonicalIPv4(t), JSON.stringify(t)).toBe(n !== undefined && numberToIPv4(n) === t)
    }
  })
})
