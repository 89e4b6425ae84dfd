import type {IptablesRule} from '../../model/node-state.js'
import {cidrContains, parseCidr, parseIp} from '../ip.js'
import {ctStates, type MatchEnv, matchExtension, type XtPacket} from './xt-match.js'

/**
 * Whether one iptables rule matches a packet, for the matches netctl models:
 * -s/-d, -i/-o (with the `+` wildcard), -p, --sport/--dport (ranges and
 * multiport lists), state/conntrack (with DNAT/SNAT), and the extension
 * matches of xt-match.ts (set, addrtype, statistic, mark, connmark, rpfilter,
 * physdev, recent, and the header matches: icmp types, tcp flags, limit, ...). `unknown` when everything modelled matches but the rule also
 * matches on something netctl cannot evaluate here; `random` alternatives
 * (statistic) are returned with their probability.
 */

export type CtState = 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED'

export interface FilterPacket extends XtPacket {
  /** icmp, tcp, udp, or an IP protocol number as text ('4' for IPIP) */
  protocol: string
  /** -i: the interface it came in on (absent in OUTPUT) */
  in?: string
  /** -o: the interface it leaves by (absent in INPUT) */
  out?: string
  ctstate: CtState
  /** the packet mark (MARK targets change it while the chains are walked) */
  mark: number
}

export type MatchResult = 'yes' | 'no' | 'unknown'

const PROTO_NUMBERS: Record<string, number> = {
  all: 0,
  icmp: 1,
  igmp: 2,
  ipencap: 4,
  ipip: 4,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  'ipv6-icmp': 58,
  sctp: 132,
}

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

export interface RuleMatch {
  result: MatchResult
  unmodelled: string[]
  /** the rule matches only some packets of the flow (statistic): with this probability */
  random?: {probability: number; what: string}
  /** the rule matched on state remembered from earlier packets (a recent list holding the address) */
  remembered?: string
  /** what netctl took for granted to say so (a rate limit not reached) */
  assumed?: string
}

export function matchRule(rule: IptablesRule, p: FilterPacket, env: MatchEnv = {}): RuleMatch {
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
  if (m.ctstate !== undefined) {
    const states = ctStates(p.ctstate, p.ctnat)
    checks.push(['ctstate', m.ctstate.some((s) => states.includes(s.toUpperCase()))])
  }
  for (const [field, ok] of checks) {
    // a port match on a rule without -p never happens: iptables refuses it
    if (ok === neg.has(field)) return {result: 'no', unmodelled: []}
  }
  const unmodelled: string[] = []
  let random: RuleMatch['random']
  let remembered: string | undefined
  let assumed: string | undefined
  for (const o of m.other ?? []) {
    const x = matchExtension(o, p, env)
    if (x.result === 'no') return {result: 'no', unmodelled: []}
    if (x.result === 'unknown') unmodelled.push(x.why)
    if (x.result === 'yes' && x.remembered) remembered ??= x.remembered
    if (x.result === 'yes' && x.assumed) assumed = assumed ? `${assumed}; ${x.assumed}` : x.assumed
    if (x.result === 'random')
      random = random
        ? {probability: random.probability * x.probability, what: `${random.what}, ${x.what}`}
        : {probability: x.probability, what: x.what}
  }
  if (unmodelled.length > 0) return {result: 'unknown', unmodelled}
  return {
    result: 'yes',
    unmodelled,
    ...(random ? {random} : {}),
    ...(remembered ? {remembered} : {}),
    ...(assumed ? {assumed} : {}),
  }
}

/** The connection mark after a CONNMARK target; the packet mark too for --restore-mark. undefined: not understood. */
export function applyConnmark(
  args: string[],
  mark: number,
  ctmark: number,
): {mark: number; ctmark: number} | undefined {
  const opt = args[0]
  const val = (name: string): number | undefined => {
    const i = args.indexOf(name)
    return i < 0 || args[i + 1] === undefined ? undefined : parseNumber(args[i + 1]!.split('/')[0]!)
  }
  const nfmask = val('--nfmask') ?? val('--mask') ?? 0xffffffff
  const ctmask = val('--ctmask') ?? val('--mask') ?? 0xffffffff
  switch (opt) {
    case '--save-mark':
      return {mark, ctmark: ((ctmark & ~ctmask) ^ (mark & nfmask)) >>> 0}
    case '--restore-mark':
      return {mark: ((mark & ~nfmask) ^ (ctmark & ctmask)) >>> 0, ctmark}
    default: {
      const next = applyMark(args, ctmark)
      return next === undefined ? undefined : {mark, ctmark: next}
    }
  }
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
