import ipaddr from 'ipaddr.js'

import type {Family} from '../model/node-state.js'
import {plainIPv4} from '../util/dotted-quad.js'
import {remembered} from '../util/memo.js'

/**
 * The one IP module. Three faces, for three kinds of work:
 * - addresses as bytes plus family (`Ip`, `Cidr`): the forwarding model's
 *   lookups, IPv4 and IPv6, prefix tests as bit operations;
 * - IPv4 prefixes as numbers (`Prefix4`): the checks' containment and overlap
 *   of CIDR text, where IPv6 values never match;
 * - CIDR text as the lab and `backend` write it: prefix length, address
 *   arithmetic, dual-stack containment.
 * Pure: every layer above analyze may use it.
 */

/**
 * Addresses as the forwarding model handles them: bytes (4 or 16) plus the
 * family, so that prefix tests are bit operations and never string games.
 */
export interface Ip {
  family: Family
  bytes: Uint8Array
  /** canonical text: dotted quad, or RFC 5952 for IPv6 */
  text: string
}

export interface Cidr {
  ip: Ip
  len: number
}

export const familyBits = (f: Family): number => (f === 'inet' ? 32 : 128)

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/
/** Parsed addresses by their text: lookups parse the same gateways and destinations over and over. */
const parsed = new Map<string, Ip | undefined>()

/** Parse an address; undefined when it is not one. IPv4 must be a plain dotted quad. */
export function parseIp(text: string): Ip | undefined {
  return remembered(parsed, text, 50_000, parseIpUncached)
}

function parseIpUncached(text: string): Ip | undefined {
  // a plain dotted quad, read digit by digit (a neighbour table holds one per peer)
  const plain = text.includes('/') ? undefined : parsePrefixPlain(text)
  if (plain) {
    const n = plain.net
    return {
      family: 'inet',
      bytes: Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255),
      text: numberToIPv4(n),
    }
  }
  const t = text.trim()
  const m = V4.exec(t)
  if (m) {
    const bytes = Uint8Array.from(m.slice(1, 5).map(Number))
    if (bytes.some((b, i) => b !== Number(m[i + 1]))) return undefined
    return {family: 'inet', bytes, text: bytes.join('.')}
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(t)) {
    const a = ipaddr.IPv4.parse(t)
    return {family: 'inet', bytes: Uint8Array.from(a.toByteArray()), text: a.toString()}
  }
  const bare = t.split('%')[0] as string
  if (ipaddr.IPv6.isValid(bare)) {
    const a = ipaddr.IPv6.parse(bare)
    return {family: 'inet6', bytes: Uint8Array.from(a.toByteArray()), text: a.toRFC5952String()}
  }
  return undefined
}

export function mustIp(text: string): Ip {
  const ip = parseIp(text)
  if (!ip) throw new Error(`not an IP address: '${text}'`)
  return ip
}

/**
 * Parse 'a.b.c.d/n', a bare address (a host prefix), 'default', or 'all'
 * (a rule selector: everything). Host bits are cleared, as the kernel does.
 */
export function parseCidr(text: string, family?: Family): Cidr | undefined {
  const t = text.trim()
  if (t === 'default' || t === 'all' || t === 'any') {
    const f = family ?? 'inet'
    return {ip: zeroIp(f), len: 0}
  }
  const [addr, lenText] = t.split('/')
  const ip = parseIp(addr ?? '')
  if (!ip) return undefined
  const bits = familyBits(ip.family)
  const len = lenText === undefined ? bits : Number(lenText)
  if (!Number.isInteger(len) || len < 0 || len > bits) return undefined
  return {ip: maskIp(ip, len), len}
}

const ZERO: Record<Family, Ip> = {
  inet: Object.freeze({family: 'inet', bytes: new Uint8Array(4), text: '0.0.0.0'}) as Ip,
  inet6: Object.freeze({family: 'inet6', bytes: new Uint8Array(16), text: '::'}) as Ip,
}

/** 0.0.0.0 or :: (shared: never write to its bytes). */
export function zeroIp(family: Family): Ip {
  return ZERO[family]
}

export function ipFromBytes(bytes: Uint8Array): Ip {
  if (bytes.length === 4) return {family: 'inet', bytes, text: bytes.join('.')}
  const a = ipaddr.fromByteArray([...bytes])
  return {
    family: bytes.length === 4 ? 'inet' : 'inet6',
    bytes,
    text: a.kind() === 'ipv6' ? (a as ipaddr.IPv6).toRFC5952String() : a.toString(),
  }
}

/** The address with every bit past `len` cleared. */
export function maskIp(ip: Ip, len: number): Ip {
  const out = Uint8Array.from(ip.bytes)
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8))
    out[i] = (out[i] as number) & ((0xff << (8 - keep)) & 0xff)
  }
  return ipFromBytes(out)
}

/** Bit `i` (0 = most significant) of an address. */
export function bitAt(bytes: Uint8Array, i: number): 0 | 1 {
  return (((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1) as 0 | 1
}

/** How many leading bits of a and b agree, looking at most at `limit` bits from bit `from`. */
export function commonBits(a: Uint8Array, b: Uint8Array, limit: number, from = 0): number {
  let i = from
  // whole bytes first while aligned
  while (i < limit && (i & 7) === 0 && i + 8 <= limit && a[i >> 3] === b[i >> 3]) i += 8
  while (i < limit && bitAt(a, i) === bitAt(b, i)) i++
  return i
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return c.ip.family === ip.family && commonBits(c.ip.bytes, ip.bytes, c.len) === c.len
}

export function sameIp(a: Ip | undefined, b: Ip | undefined): boolean {
  return !!a && !!b && a.family === b.family && a.text === b.text
}

export function formatCidr(c: Cidr): string {
  return `${c.ip.text}/${c.len}`
}

/** The IPv4 address classes the kernel treats specially. */
export const v4 = {
  /** since Linux 5.3 only 0.0.0.0 itself (0.0.0.0/8 became ordinary unicast) */
  isZeronet: (ip: Ip) => ip.bytes.every((b) => b === 0),
  isZero: (ip: Ip) => ip.bytes.every((b) => b === 0),
  isLoopback: (ip: Ip) => ip.bytes[0] === 127,
  isMulticast: (ip: Ip) => ((ip.bytes[0] as number) & 0xf0) === 0xe0,
  /** 224.0.0.0/24: link-local multicast, never routed */
  isLocalMulticast: (ip: Ip) => ip.bytes[0] === 224 && ip.bytes[1] === 0 && ip.bytes[2] === 0,
  /** 255.255.255.255 */
  isLimitedBroadcast: (ip: Ip) => ip.bytes.every((b) => b === 255),
}

export const v6 = {
  isZero: (ip: Ip) => ip.bytes.every((b) => b === 0),
  isLoopback: (ip: Ip) => ip.bytes.slice(0, 15).every((b) => b === 0) && ip.bytes[15] === 1,
  isMulticast: (ip: Ip) => ip.bytes[0] === 0xff,
  isLinkLocal: (ip: Ip) => ip.bytes[0] === 0xfe && ((ip.bytes[1] as number) & 0xc0) === 0x80,
}

/**
 * rtnetlink scopes: smaller is wider. An address or route of scope S is
 * usable where scope <= the asked scope (global 0 fits everything).
 */
export const SCOPE = {global: 0, universe: 0, site: 200, link: 253, host: 254, nowhere: 255} as const

export function scopeValue(scope: string | number | undefined, fallback: number = SCOPE.global): number {
  if (scope === undefined || scope === '') return fallback
  if (typeof scope === 'number') return scope
  const named = (SCOPE as Record<string, number>)[scope]
  if (named !== undefined) return named
  const n = Number(scope)
  return Number.isInteger(n) ? n : fallback
}

/*
 * IPv4 prefix arithmetic by number, for the checks: containment and overlap
 * of CIDRs, nothing more (the checks compare state; they do not look routes
 * up). IPv6 values are not IPv4 prefixes and never match.
 */

export interface Prefix4 {
  /** network address as an unsigned 32-bit number (host bits cleared) */
  net: number
  len: number
}

export function ipv4ToNumber(ip: string): number | undefined {
  // the plain form read digit by digit (one per node, peer and route); anything else as below
  const plain = parsePrefixPlain(ip)
  if (plain?.len === 32 && !ip.includes('/')) return plain.net
  return ipv4ToNumberSlow(ip)
}

function ipv4ToNumberSlow(ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  let v = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    v = v * 256 + n
  }
  return v
}

/**
 * Is the text a dotted quad exactly as numberToIPv4 writes it (four octets of 0-255, no leading
 * zero, nothing else)? Then it is its own canonical text: an index keyed by canonical text can use
 * it as it is, with no parse and no new string (a neighbour table holds one per peer).
 */
export function isCanonicalIPv4(text: string): boolean {
  // exactly the schema's plain dotted quad: no leading zero, every octet in range, nothing else
  return plainIPv4(text, false) === 1
}

/** Is TEXT, parsed as P, written as canonical() writes it ("10.244.1.0/24")? Then it is its own canonical form. */
export function isCanonicalPrefix(text: string, p: Prefix4): boolean {
  const slash = text.indexOf('/')
  return (
    slash > 0 &&
    (p.net & maskOf(p.len)) >>> 0 === p.net &&
    text.slice(slash + 1) === String(p.len) &&
    isCanonicalIPv4(text.slice(0, slash))
  )
}

/** An address's canonical text (parseIp's `text`), without parsing one written so already (undefined: not an address). */
export function ipText(text: string): string | undefined {
  return isCanonicalIPv4(text) ? text : parseIp(text)?.text
}

export function numberToIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
}

/** The IPv4 netmask of a prefix length, as a number. */
export const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)

/**
 * Parsed prefixes by their text. A snapshot names the same few thousand
 * prefixes over and over (every node routes every peer's subnet): each is
 * parsed once, then looked up. Cleared when it grows past a bound, so a
 * long-lived process does not keep every string it ever saw.
 */
const parsedPrefixes = new Map<string, Prefix4 | undefined>()
const PARSED_MAX = 1 << 20

/** "10.244.1.0/24" (or a bare address, as /32) → its prefix; undefined for anything else. */
export function parsePrefix(cidr: string | undefined): Prefix4 | undefined {
  return cidr ? remembered(parsedPrefixes, cidr, PARSED_MAX, parsePrefixUncached) : undefined
}

/**
 * parsePrefix without its memory of texts: for a table read once and then indexed (the forwarding
 * model's routes), where remembering each of thousands of texts costs more than reading it.
 */
export function parsePrefixUncached(cidr: string): Prefix4 | undefined {
  return parsePrefixPlain(cidr) ?? parsePrefixSlow(cidr)
}

/**
 * The common case, "a.b.c.d/n" or "a.b.c.d" with nothing else, read digit by digit: no split, no
 * regular expression (a node's table holds a route per peer, thousands of them). Anything else
 * (a stray character, an octet past 255) is left to parsePrefixSlow, which has the last word.
 */
function parsePrefixPlain(cidr: string): Prefix4 | undefined {
  let ip = 0
  let octet = 0
  let digits = 0
  let dots = 0
  let i = 0
  const n = cidr.length
  for (; i < n; i++) {
    const c = cidr.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return undefined
      octet = octet * 10 + (c - 48)
    } else if (c === 46 && dots < 3 && digits > 0 && octet <= 255) {
      ip = ip * 256 + octet
      dots++
      octet = 0
      digits = 0
    } else break
  }
  if (dots !== 3 || digits === 0 || octet > 255) return undefined
  ip = ip * 256 + octet
  let len = 32
  if (i < n) {
    if (cidr.charCodeAt(i) !== 47 || n - i < 2 || n - i > 3) return undefined
    len = 0
    for (i++; i < n; i++) {
      const c = cidr.charCodeAt(i)
      if (c < 48 || c > 57) return undefined
      len = len * 10 + (c - 48)
    }
    if (len > 32) return undefined
  }
  return Object.freeze({net: (ip & maskOf(len)) >>> 0, len})
}

function parsePrefixSlow(cidr: string): Prefix4 | undefined {
  const [addr, lenText] = cidr.split('/')
  const ip = ipv4ToNumber(addr ?? '')
  if (ip === undefined) return undefined
  const len = lenText === undefined ? 32 : /^\d{1,2}$/.test(lenText) ? Number(lenText) : Number.NaN
  if (!(len >= 0 && len <= 32)) return undefined
  return Object.freeze({net: (ip & maskOf(len)) >>> 0, len})
}

export function isIPv4(ip: string | undefined): boolean {
  return ip !== undefined && ipv4ToNumber(ip) !== undefined
}

/** Does `outer` contain all of `inner` (an address or a CIDR)? */
export function contains(outer: string, inner: string): boolean {
  const o = parsePrefix(outer)
  const i = parsePrefix(inner)
  return o !== undefined && i !== undefined && prefixContains(o, i)
}

/** contains() on prefixes parsed already (a state's routes, parsed once by its index). */
export function prefixContains(o: Prefix4, i: Prefix4): boolean {
  return i.len >= o.len && (i.net & maskOf(o.len)) >>> 0 === o.net
}

/** Do two CIDRs share any address? */
export function overlaps(a: string, b: string): boolean {
  return contains(a, b) || contains(b, a)
}

/** The same network, written either way ("10.244.1.1/24" and "10.244.1.0/24" are one network). */
export function sameNetwork(a: string, b: string): boolean {
  const pa = parsePrefix(a)
  const pb = parsePrefix(b)
  return pa !== undefined && pb !== undefined && pa.net === pb.net && pa.len === pb.len
}

/** "10.244.1.0/24" → "10.244.1.0" (flannel's VTEP address for that subnet). */
export function networkOf(cidr: string): string | undefined {
  const p = parsePrefix(cidr)
  return p ? numberToIPv4(p.net) : undefined
}

/** The n-th address of a CIDR with the prefix length: ("10.244.1.0/24", 1) → "10.244.1.1/24". */
export function nthAddress(cidr: string, n: number): string | undefined {
  const p = parsePrefix(cidr)
  return p ? `${numberToIPv4((p.net + n) >>> 0)}/${p.len}` : undefined
}

/** An address without its prefix length: "172.31.0.11/24" → "172.31.0.11". */
export function stripPrefix(addr: string): string {
  // no array made: asked once per node of the cluster and more
  const slash = addr.indexOf('/')
  return slash < 0 ? addr : addr.slice(0, slash)
}

/** Normalise a CIDR ("10.244.1.1/24" → "10.244.1.0/24"); other text unchanged. */
export function canonical(cidr: string): string {
  const p = parsePrefix(cidr)
  return p ? `${numberToIPv4(p.net)}/${p.len}` : cidr
}

/*
 * CIDR text as the lab plans it and `backend` computes desired state: values
 * netctl wrote itself, dual-stack where ipaddr.js is.
 */

/** "10.244.1.0/24" → 24. */
export function prefixLength(cidr: string): number {
  return Number(cidr.split('/')[1])
}

/** Does the CIDR hold the address (a prefix length on it is ignored)? Dual-stack; false for anything unparsable. */
export function cidrContainsAddress(cidr: string, address: string): boolean {
  try {
    const [net, len] = ipaddr.parseCIDR(cidr)
    const addr = ipaddr.parse(stripPrefix(address))
    return addr.kind() === net.kind() && addr.match(net, len)
  } catch {
    return false
  }
}

/** A CIDR inside another (or the same). */
export function cidrWithin(inner: string, outer: string): boolean {
  return prefixLength(inner) >= prefixLength(outer) && cidrContainsAddress(outer, stripPrefix(inner))
}

/** The IPv4 address `n` past a CIDR's (or an address's) own: ("10.244.1.0/24", 2) → "10.244.1.2". */
export function addToIPv4(cidrOrIp: string, n: number): string {
  const base = ipaddr.IPv4.parse(stripPrefix(cidrOrIp)).toByteArray()
  const v = ((base[0]! << 24) >>> 0) + (base[1]! << 16) + (base[2]! << 8) + base[3]! + n
  return numberToIPv4(v)
}
