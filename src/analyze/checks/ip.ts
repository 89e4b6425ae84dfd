/**
 * IPv4 prefix arithmetic for the checks: containment and overlap of CIDRs,
 * nothing more (the checks compare state; they do not look routes up).
 * IPv6 values are not IPv4 prefixes and never match.
 */

export interface Prefix4 {
  /** network address as an unsigned 32-bit number (host bits cleared) */
  net: number
  len: number
}

export function ipv4ToNumber(ip: string): number | undefined {
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

export function numberToIPv4(v: number): string {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.')
}

const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)

/**
 * Parsed prefixes by their text. A snapshot names the same few thousand
 * prefixes over and over (every node routes every peer's subnet): each is
 * parsed once, then looked up. Cleared when it grows past a bound, so a
 * long-lived process does not keep every string it ever saw.
 */
const parsed = new Map<string, Prefix4 | undefined>()
const PARSED_MAX = 1 << 20

/** "10.244.1.0/24" (or a bare address, as /32) → its prefix; undefined for anything else. */
export function parsePrefix(cidr: string | undefined): Prefix4 | undefined {
  if (!cidr) return undefined
  const known = parsed.get(cidr)
  if (known !== undefined || parsed.has(cidr)) return known
  if (parsed.size >= PARSED_MAX) parsed.clear()
  const p = parseUncached(cidr)
  parsed.set(cidr, p)
  return p
}

function parseUncached(cidr: string): Prefix4 | undefined {
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
  if (!o || !i || i.len < o.len) return false
  return ((i.net & maskOf(o.len)) >>> 0) === o.net
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
  return addr.split('/')[0] ?? addr
}

/** Normalise a CIDR ("10.244.1.1/24" → "10.244.1.0/24"); other text unchanged. */
export function canonical(cidr: string): string {
  const p = parsePrefix(cidr)
  return p ? `${numberToIPv4(p.net)}/${p.len}` : cidr
}
