import ipaddr from 'ipaddr.js'
import {describe, expect, it} from 'vitest'

import {SCHEMA_FORMATS} from '../../src/util/schema.js'

// the formats' answers as ipaddr.js gives them (the fast path for dotted quads must never disagree)
function ipaddrCidr(s: string): boolean {
  try {
    const [addr, len] = ipaddr.parseCIDR(s)
    return (addr.kind() === 'ipv6' || ipaddr.IPv4.isValidFourPartDecimal(s.split('/')[0]!)) && len >= 0
  } catch {
    return false
  }
}
const ipaddrIp = (s: string): boolean =>
  ipaddr.IPv4.isValidFourPartDecimal(s) || (s.includes(':') && ipaddr.IPv6.isValid(s))

const CASES = [
  '10.244.1.0/24',
  '0.0.0.0/0',
  '255.255.255.255/32',
  '10.0.0.0/33',
  '10.0.0.0/024',
  '010.0.0.0/8',
  '256.0.0.0/8',
  '10.1/16',
  '10.0.0.0',
  '10.0.0.0/',
  '/24',
  '1.2.3.4/32 ',
  ' 1.2.3.4/32',
  '1.2.3.4.5/32',
  'fd00::/64',
  '::/0',
  'fd00::1',
  '::ffff:10.0.0.1',
  '10.0.0.1',
  '0.0.0.0',
  '255.255.255.256',
  '1.2.3',
  '01.2.3.4',
  '1.2.3.4\n',
  'a.b.c.d',
  '',
  '1e1.0.0.0/8',
  '0x10.0.0.0/8',
  '10.0.0.0/8/8',
  '999.1.1.1',
]

describe('schema formats: cidr and ip', () => {
  it('agree with ipaddr.js on every case, dotted quads included', () => {
    for (const s of CASES) {
      expect([s, SCHEMA_FORMATS.cidr.validate(s)]).toEqual([s, ipaddrCidr(s)])
      expect([s, SCHEMA_FORMATS.ip.validate(s)]).toEqual([s, ipaddrIp(s)])
    }
  })
  it('agree on generated addresses and lengths', () => {
    for (let i = 0; i < 3000; i++) {
      const o = () => String([0, 1, 9, 10, 99, 100, 199, 254, 255, 256, 300, 999][(i * 7 + Math.floor(i / 3)) % 12])
      const s = `${o()}.${String((i * 13) % 260)}.${String((i * 31) % 300)}.${String(i % 257)}`
      const c = `${s}/${String(i % 40)}`
      expect([c, SCHEMA_FORMATS.cidr.validate(c)]).toEqual([c, ipaddrCidr(c)])
      expect([s, SCHEMA_FORMATS.ip.validate(s)]).toEqual([s, ipaddrIp(s)])
    }
  })
  it('IPv6 texts judged once agree on every later ask, past the memory being cleared', () => {
    const v6 = (i: number) => [
      `fe80::${i.toString(16)}`,
      `fe80::${i.toString(16)}/64`,
      `fe80::${i.toString(16)}g`,
      `::${i}/129`,
    ]
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < 5000; i += round + 1)
        for (const s of [...v6(i), 'fe80::/64', 'ff00::/8', '::1/128', '::1']) {
          expect([s, SCHEMA_FORMATS.cidr.validate(s)]).toEqual([s, ipaddrCidr(s)])
          expect([s, SCHEMA_FORMATS.ip.validate(s)]).toEqual([s, ipaddrIp(s)])
        }
  })
  it('mac: what the pattern accepts, character by character', () => {
    const pattern = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/
    const macs = [
      '0a:00:00:01:00:05',
      '0A:fF:00:01:00:05',
      '0a:00:00:01:00:0',
      '0a:00:00:01:00:055',
      '0a-00-00-01-00-05',
      '0g:00:00:01:00:05',
      '0a:00:00:01:00:05\n',
      '',
      ':0a:00:00:01:00:0',
      '0a:00:00:01:00:/5',
      '0a:00:00:01:00:@5',
      '0a:00:00:01:00:`5',
    ]
    for (let i = 0; i < 256; i++)
      macs.push(`${String.fromCharCode(i)}a:00:00:01:00:05`, `0a:00:00:01:00:0${String.fromCharCode(i)}`)
    for (const m of macs) expect([m, SCHEMA_FORMATS.mac.validate(m)]).toEqual([m, pattern.test(m)])
  })
})
