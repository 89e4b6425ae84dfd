import type {IptablesRule} from '../../model/node-state.js'
import {cidrContains, parseCidr, parseIp} from '../ip.js'

/**
 * Whether one iptables rule matches a packet, for the matches netctl models:
 * -s/-d, -i/-o (with the `+` wildcard), -p, --sport/--dport (ranges and
 * multiport lists), state/conntrack, mark. `unknown` when everything modelled
 * matches but the rule also matches on something netctl does not model.
 */

export type CtState = 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED'

export interface FilterPacket {
  src: string
  dst: string
  /** icmp, tcp, udp, or an IP protocol number as text ('4' for IPIP) */
  protocol: string
  sport?: number
  dport?: number
  /** -i: the interface it came in on (absent in OUTPUT) */
  in?: string
  /** -o: the interface it leaves by (absent in INPUT) */
  out?: string
  ctstate: CtState
  /** the packet mark (MARK targets change it while the chains are walked) */
  mark: number
}

export type MatchResult = 'yes' | 'no' | 'unknown'

const PROTO_NUMBERS: Record<string, number> = {all: 0, icmp: 1, igmp: 2, ipencap: 4, ipip: 4, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, icmpv6: 58, 'ipv6-icmp': 58, sctp: 132}

export function protoNumber(p: string): number | undefined {
  const t = p.trim().toLowerCase()
  if (/^\d+$/.test(t)) return Number(t)
  return PROTO_NUMBERS[t]
}

function matchAddress(spec: string, ip: string): boolean {
  const a = parseIp(ip)
  if (!a) return false
  return spec.split(',').some((s) => {
    const c = parseCidr(s.trim())
    return !!c && cidrContains(c, a)
  })
}

function matchIface(spec: string, dev: string | undefined): boolean {
  if (dev === undefined) return false
  return spec.endsWith('+') ? dev.startsWith(spec.slice(0, -1)) : dev === spec
}

function matchPorts(spec: string, port: number | undefined): boolean {
  if (port === undefined) return false
  return spec.split(',').some((part) => {
    const [lo, hi] = part.split(':')
    const low = lo === '' || lo === undefined ? 0 : Number(lo)
    const high = hi === undefined ? low : hi === '' ? 65535 : Number(hi)
    return port >= low && port <= high
  })
}

function parseNumber(s: string): number {
  return Number(s) >>> 0
}

/** `mark --mark V[/M]` kept in match.other by the parser. */
export function markMatch(other: string): {value: number; mask: number; negated: boolean} | undefined {
  const m = /^(!\s+)?mark\s+(!\s+)?--mark\s+(\S+)$/.exec(other.trim())
  if (!m) return undefined
  const [v, k] = (m[3] as string).split('/')
  return {value: parseNumber(v as string), mask: k === undefined ? 0xffffffff : parseNumber(k), negated: !!(m[1] || m[2])}
}

export function matchRule(rule: IptablesRule, p: FilterPacket): {result: MatchResult; unmodelled: string[]} {
  const m = rule.match
  const neg = new Set(m.negated ?? [])
  const checks: Array<[keyof typeof m, boolean]> = []
  if (m.source !== undefined) checks.push(['source', matchAddress(m.source, p.src)])
  if (m.destination !== undefined) checks.push(['destination', matchAddress(m.destination, p.dst)])
  if (m.inInterface !== undefined) checks.push(['inInterface', matchIface(m.inInterface, p.in)])
  if (m.outInterface !== undefined) checks.push(['outInterface', matchIface(m.outInterface, p.out)])
  if (m.protocol !== undefined) {
    const want = protoNumber(m.protocol)
    const have = protoNumber(p.protocol)
    checks.push(['protocol', want === 0 || (want !== undefined && want === have)])
  }
  if (m.dport !== undefined) checks.push(['dport', matchPorts(m.dport, p.dport)])
  if (m.sport !== undefined) checks.push(['sport', matchPorts(m.sport, p.sport)])
  if (m.ctstate !== undefined) checks.push(['ctstate', m.ctstate.map((s) => s.toUpperCase()).includes(p.ctstate)])
  for (const [field, ok] of checks) {
    // a port match on a rule without -p never happens: iptables refuses it
    if (ok === neg.has(field)) return {result: 'no', unmodelled: []}
  }
  const unmodelled: string[] = []
  for (const o of m.other ?? []) {
    const mark = markMatch(o)
    if (mark) {
      const hit = ((p.mark ^ mark.value) & mark.mask) >>> 0 === 0
      if (hit === mark.negated) return {result: 'no', unmodelled: []}
      continue
    }
    unmodelled.push(o)
  }
  return {result: unmodelled.length > 0 ? 'unknown' : 'yes', unmodelled}
}

/** The new mark after a MARK target (--set-xmark, --set-mark, --or-mark, --and-mark, --xor-mark); undefined: not understood. */
export function applyMark(args: string[], mark: number): number | undefined {
  const [opt, val] = args
  if (!opt || !val) return undefined
  const [v, k] = val.split('/')
  const value = parseNumber(v as string)
  const mask = k === undefined ? 0xffffffff : parseNumber(k)
  switch (opt) {
    case '--set-xmark':
      return ((mark & ~mask) ^ value) >>> 0
    case '--set-mark':
      return ((mark & ~mask) | value) >>> 0
    case '--or-mark':
      return (mark | value) >>> 0
    case '--and-mark':
      return (mark & value) >>> 0
    case '--xor-mark':
      return (mark ^ value) >>> 0
    default:
      return undefined
  }
}
