import type {Ipset, XtRecent} from '../../model/netfilter.js'
import {cidrContains, ipv4ToNumber, mustIp, numberToIPv4, parseCidr, parseIp, sameIp} from '../ip.js'
import {dscpNumber, icmpTypeSpec, tcpFlagMask} from './header-fields.js'

/**
 * The iptables extension matches the agents write (kept by the parser in
 * `match.other` as "MODULE OPTIONS..."): set, addrtype, statistic, mark,
 * connmark, conntrack beyond --ctstate, rpfilter, physdev, recent; and those a
 * host firewall adds: icmp/icmp6 types, tcp flags, pkttype, limit, hashlimit and connlimit,
 * length, ttl, iprange, tos and dscp. Each is evaluated from the packet and what
 * the node holds (its ipsets, its local table, its FIB); what the snapshot cannot
 * tell stays unknown, with the reason.
 */

/** What a rule's extension matches read besides the packet's headers. */
export interface MatchEnv {
  /** the node's ipsets; undefined when not collected (then `why` says so) */
  ipsets?: Ipset[]
  ipsetsMissing?: string
  /** the recent match's address lists and the kernel's clock; undefined when not collected (then `recentMissing` says so) */
  recent?: XtRecent
  recentMissing?: string
  /** the address type the kernel's local table gives `ip` (limited to `dev` when set); undefined: not known */
  addrType?: (ip: string, dev?: string) => string | undefined
  /** whether the reverse path of the packet is valid (xt_rpfilter); undefined: not known */
  rpfilter?: (opts: {loose: boolean; validmark: boolean; acceptLocal: boolean}) => boolean | undefined
}

/** The packet as the extension matches see it. */
export interface XtPacket {
  src: string
  dst: string
  protocol: string
  sport?: number
  dport?: number
  in?: string
  out?: string
  mark: number
  /** the connection's mark (CONNMARK); 0 for a new connection */
  ctmark?: number
  /** the connection's address translations so far */
  ctnat?: {dnat?: boolean; snat?: boolean}
  /** the direction of the packet in its connection */
  ctdir?: 'ORIGINAL' | 'REPLY'
  /** the original tuple of the connection (before any translation) */
  ctorig?: {src: string; dst: string; dport?: number}
  /**
   * br_netfilter's view: the bridge ports the packet came in and goes out by.
   * `{}` when it did not cross a bridge; undefined when the walk does not know.
   */
  phys?: {in?: string; out?: string; bridged?: boolean}
  /** an ICMP (ICMPv6) packet's type and code; undefined: not known */
  icmp?: {type: number; code: number}
  /** a TCP segment's flags (header-fields.ts's bits); undefined: not known */
  tcpFlags?: number
  /** the IP header's TTL (IPv6: hop limit) as this hook sees it; undefined: not known */
  ttl?: number
  /** the IP packet's total length in bytes; undefined: not known */
  length?: number
  /** the TOS byte (IPv6: traffic class), DSCP and ECN; undefined: not known */
  tos?: number
}

export type XtResult =
  /** assumed: what netctl took for granted to say so (a rate limit the flow stays under) */
  | {result: 'yes' | 'no'; remembered?: string; assumed?: string}
  | {result: 'unknown'; why: string}
  | {result: 'random'; probability: number; what: string}

const yes: XtResult = {result: 'yes'}
const no: XtResult = {result: 'no'}
const unknown = (why: string): XtResult => ({result: 'unknown', why})
const is = (b: boolean): XtResult => (b ? yes : no)

/** One option with its value, and whether `!` came before it. */
interface Opt {
  name: string
  values: string[]
  negated: boolean
}

function options(words: string[]): Opt[] {
  const out: Opt[] = []
  let neg = false
  for (const w of words) {
    if (w === '!') {
      neg = true
      continue
    }
    if (w.startsWith('--')) {
      out.push({name: w, values: [], negated: neg})
      neg = false
      continue
    }
    const last = out.at(-1)
    if (last) last.values.push(w)
    // old syntax: `--opt ! value`
    if (neg && last) last.negated = true
    neg = false
  }
  return out
}

const parseNumber = (s: string): number => Number(s) >>> 0

/** `V[/M]` as iptables writes marks. */
function markSpec(v: string | undefined): {value: number; mask: number} | undefined {
  if (!v) return undefined
  const [a, b] = v.split('/')
  const value = parseNumber(a!)
  const mask = b === undefined ? 0xffffffff : parseNumber(b)
  return Number.isNaN(value) || Number.isNaN(mask) ? undefined : {value, mask}
}

/** Evaluate one unmodelled-by-the-parser entry of `match.other`. */
export function matchExtension(other: string, p: XtPacket, env: MatchEnv): XtResult {
  const words = other.trim().split(/\s+/)
  // `! -m foo` is not iptables syntax; a leading `!` negates the first option
  const module = words[0] === '!' ? words[1] : words[0]
  const opts = options(words[0] === '!' ? ['!', ...words.slice(2)] : words.slice(1))
  switch (module) {
    case 'comment':
      return yes
    case 'mark':
    case 'connmark': {
      const o = opts.find((x) => x.name === '--mark')
      const m = markSpec(o?.values[0])
      if (!o || !m) return unknown(`${other}: no --mark value`)
      const have = module === 'mark' ? p.mark : (p.ctmark ?? 0)
      return is((((have ^ m.value) & m.mask) >>> 0 === 0) !== o.negated)
    }
    case 'set':
      return matchSet(other, opts, p, env)
    case 'addrtype':
      return matchAddrtype(other, opts, p, env)
    case 'statistic':
      return matchStatistic(other, opts)
    case 'conntrack':
    case 'state':
      return matchConntrack(other, opts, p)
    case 'rpfilter': {
      const r = env.rpfilter?.({
        loose: has(opts, '--loose'),
        validmark: has(opts, '--validmark'),
        acceptLocal: has(opts, '--accept-local'),
      })
      if (r === undefined)
        return unknown(`${other}: the reverse path lookup needs the node's routes and the input interface`)
      return is(r !== has(opts, '--invert'))
    }
    case 'physdev':
      return matchPhysdev(other, opts, p)
    case 'recent':
      return matchRecent(other, opts, p, env)
    case 'icmp':
    case 'icmp6':
      return matchIcmp(other, opts, p, module === 'icmp6')
    case 'tcp':
      return matchTcp(other, opts, p)
    case 'pkttype':
      return matchPkttype(other, opts)
    case 'limit':
    case 'hashlimit':
      return matchLimit(other, opts)
    case 'connlimit':
      return matchConnlimit(other, opts)
    case 'length':
    case 'ttl':
    case 'hl':
    case 'tos':
    case 'dscp':
      return matchHeaderValue(other, module, opts, p)
    case 'iprange':
      return matchIprange(other, opts, p)
    case 'udp':
    case 'sctp':
    case 'multiport':
      // the parser took the ports; what is left is an option (--tcp-flags, --syn) the walk does not see
      return opts.length === 0 ? yes : unknown(`${other}: not modelled`)
    default:
      return unknown(`${other}: not modelled by netctl`)
  }
}

const has = (opts: Opt[], name: string): boolean => opts.some((o) => o.name === name)

// ---- header fields: icmp, tcp flags, pkttype, length, ttl, tos, dscp, iprange --------------------

const ICMP_PROTOCOLS = new Set(['icmp', 'icmpv6', 'ipv6-icmp', '1', '58'])

/** xt_icmp / xt_icmp6: the type (and code) as `--icmp-type 8`, `3/4`, `echo-request`, `any`. */
function matchIcmp(other: string, opts: Opt[], p: XtPacket, v6: boolean): XtResult {
  const o = opts.find((x) => x.name === (v6 ? '--icmpv6-type' : '--icmp-type'))
  if (!o || opts.length > 1) return opts.length === 0 ? yes : unknown(`${other}: not modelled`)
  const spec = icmpTypeSpec(o.values[0] ?? '', v6)
  if (!spec) return unknown(`${other}: ICMP type ${o.values[0] ?? '(none)'} not known to netctl`)
  if (!p.icmp)
    return ICMP_PROTOCOLS.has(p.protocol) ? unknown(`${other}: the packet's ICMP type is not known here`) : no
  const hit =
    (spec.type === undefined || spec.type === p.icmp.type) && (spec.code === undefined || spec.code === p.icmp.code)
  return is(hit !== o.negated)
}

/** xt_tcp beyond ports: `--tcp-flags MASK COMP` (iptables-save's form of `--syn`), `--syn`. */
function matchTcp(other: string, opts: Opt[], p: XtPacket): XtResult {
  for (const o of opts) {
    if (o.name !== '--tcp-flags' && o.name !== '--syn') return unknown(`${other}: ${o.name} not modelled`)
    const syn = o.name === '--syn'
    const mask = syn ? tcpFlagMask('FIN,SYN,RST,ACK') : tcpFlagMask(o.values[0] ?? '')
    const comp = syn ? tcpFlagMask('SYN') : tcpFlagMask(o.values[1] ?? '')
    if (mask === undefined || comp === undefined) return unknown(`${other}: flags not understood`)
    if (p.tcpFlags === undefined)
      return p.protocol === 'tcp' ? unknown(`${other}: the segment's flags are not known here`) : no
    if (((p.tcpFlags & mask) === comp) === o.negated) return no
  }
  return yes
}

/**
 * xt_pkttype: a traced packet is unicast to this host at every hook (a bridged frame for another port
 * too: br_netfilter shows iptables it as the host's), never broadcast or multicast.
 */
function matchPkttype(other: string, opts: Opt[]): XtResult {
  const o = opts.find((x) => x.name === '--pkt-type')
  const t = o?.values[0]?.toLowerCase()
  if (!o || !t) return unknown(`${other}: no --pkt-type`)
  if (!['unicast', 'host', 'broadcast', 'multicast', 'otherhost'].includes(t))
    return unknown(`${other}: packet type ${t} not modelled`)
  return is((t === 'unicast' || t === 'host') !== o.negated)
}

/**
 * xt_limit and xt_hashlimit: the bucket's state is the node's, not the snapshot's; one packet of a
 * flow is taken to stay under the rate (`--hashlimit-above` then does not match), and said so.
 */
function matchLimit(other: string, opts: Opt[]): XtResult {
  const above = opts.find((o) => o.name === '--hashlimit-above')
  const rate =
    above ?? opts.find((o) => o.name === '--limit' || o.name === '--hashlimit-upto' || o.name === '--hashlimit')
  const what = rate?.values[0] ?? '3/hour' // xt_limit's default
  return above
    ? {result: 'no', assumed: `under ${what}: taken as not above it`}
    : {result: 'yes', assumed: `a rate limit of ${what}: taken as not reached`}
}

/**
 * xt_connlimit: how many connections the source (or destination) already has is the node's count, not the
 * snapshot's; the flow is taken to be within it (`--connlimit-upto` matches, `--connlimit-above` does not), and
 * said so.
 */
function matchConnlimit(other: string, opts: Opt[]): XtResult {
  const above = opts.find((o) => o.name === '--connlimit-above')
  const upto = opts.find((o) => o.name === '--connlimit-upto')
  const n = (above ?? upto)?.values[0]
  if (n === undefined) return unknown(`${other}: no --connlimit-above or --connlimit-upto`)
  const negated = (above ?? upto)!.negated
  const within = !above // upto N: matches while within N
  return {
    result: within !== negated ? 'yes' : 'no',
    assumed: `at most ${n} connections: taken as not exceeded`,
  }
}

/** `A`, `A:B` (length), with `:` open at either end. */
function inRange(spec: string, v: number): boolean | undefined {
  const [lo, hi] = spec.split(':')
  const low = lo === '' || lo === undefined ? 0 : Number(lo)
  const high = hi === undefined ? low : hi === '' ? Infinity : Number(hi)
  return Number.isNaN(low) || Number.isNaN(high) ? undefined : v >= low && v <= high
}

const TOS_NAMES: Readonly<Record<string, number>> = {
  'minimize-delay': 0x10,
  'maximize-throughput': 0x08,
  'maximize-reliability': 0x04,
  'minimize-cost': 0x02,
  'normal-service': 0x00,
}

/** xt_length, xt_ttl / xt_hl, xt_tos, xt_dscp: one header field against the rule's value. */
function matchHeaderValue(other: string, module: string, opts: Opt[], p: XtPacket): XtResult {
  const field = module === 'length' ? p.length : module === 'ttl' || module === 'hl' ? p.ttl : p.tos
  if (field === undefined)
    return unknown(`${other}: the packet's ${module === 'hl' ? 'hop limit' : module} is not known here`)
  for (const o of opts) {
    const v = o.values[0] ?? ''
    let r: boolean | undefined
    switch (o.name) {
      case '--length':
        r = inRange(v, field)
        break
      case '--ttl-eq':
      case '--hl-eq':
        r = field === Number(v)
        break
      case '--ttl-lt':
      case '--hl-lt':
        r = field < Number(v)
        break
      case '--ttl-gt':
      case '--hl-gt':
        r = field > Number(v)
        break
      case '--tos': {
        const [value, mask] = v.split('/')
        const want = TOS_NAMES[value!.toLowerCase()] ?? Number(value)
        const m = mask === undefined ? 0x3f : Number(mask)
        r = Number.isNaN(want) || Number.isNaN(m) ? undefined : (field & m) === (want & m)
        break
      }
      case '--dscp':
        r = field >> 2 === Number(v)
        break
      case '--dscp-class': {
        const n = dscpNumber(v)
        r = n === undefined ? undefined : field >> 2 === n
        break
      }
      default:
        r = undefined
    }
    if (r === undefined) return unknown(`${other}: ${o.name} ${v} not modelled`)
    if (r === o.negated) return no
  }
  return yes
}

/** xt_iprange: `--src-range A-B`, `--dst-range A-B`. */
function matchIprange(other: string, opts: Opt[], p: XtPacket): XtResult {
  for (const o of opts) {
    if (o.name !== '--src-range' && o.name !== '--dst-range') return unknown(`${other}: ${o.name} not modelled`)
    const r = addrIn(o.values[0] ?? '', o.name === '--src-range' ? p.src : p.dst)
    if (r === undefined) return unknown(`${other}: range ${o.values[0] ?? ''} not understood`)
    if (r === o.negated) return no
  }
  return yes
}

// ---- set ----------------------------------------------------------------------------------------

const PORT_PROTOS = new Set(['tcp', 'udp', 'sctp', 'udplite'])

/** `udp:53`, `53` (tcp), `tcp:80-90`: does the packet's port (and protocol) fall in it? */
function portIn(spec: string, protocol: string, port: number | undefined): boolean | undefined {
  const [a, b] = spec.includes(':') ? spec.split(':') : ['tcp', spec]
  if (!PORT_PROTOS.has(a!)) return undefined
  if (a !== protocol || port === undefined) return false
  const [lo, hi] = b!.split('-').map(Number)
  return port >= lo! && port <= (hi ?? lo!)
}

function addrIn(spec: string, ip: string): boolean | undefined {
  const a = parseIp(ip)
  if (!a) return false
  if (spec.includes('-') && !spec.includes('/')) {
    const [lo, hi] = spec.split('-').map((x) => parseIp(x))
    if (!lo || !hi) return undefined
    const n = (x: {bytes: Uint8Array}): bigint => x.bytes.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n)
    return n(a) >= n(lo) && n(a) <= n(hi)
  }
  const c = parseCidr(spec.includes('/') ? spec : `${spec}/${a.family === 'inet' ? 32 : 128}`)
  if (!c) return undefined
  return c.ip.family === a.family && cidrContains(c, a)
}

/** Whether `set` holds the packet's dimensions picked by `dirs` (src/dst per dimension); undefined: cannot tell. */
function setHolds(set: Ipset, dirs: string[], p: XtPacket, env: MatchEnv, depth: number): boolean | undefined {
  const [kind, dims = ''] = set.type.split(':')
  if (kind === 'list') {
    if (depth > 4) return undefined
    let unsure = false
    for (const m of set.members) {
      const inner = env.ipsets?.find((s) => s.name === m.value)
      const r = inner ? setHolds(inner, dirs, p, env, depth + 1) : undefined
      if (r === true) return true
      if (r === undefined) unsure = true
    }
    return unsure ? undefined : false
  }
  const parts = dims.split(',')
  const pick = (i: number): 'src' | 'dst' => ((dirs[i] ?? dirs.at(-1) ?? 'src') === 'dst' ? 'dst' : 'src')
  const values = parts.map((part, i) => {
    const d = pick(i)
    if (part === 'ip' || part === 'net') return {part, value: d === 'src' ? p.src : p.dst}
    if (part === 'port') return {part, value: d === 'src' ? p.sport : p.dport}
    if (part === 'iface') return {part, value: d === 'src' ? p.in : p.out}
    if (part === 'mark') return {part, value: p.mark}
    return {part, value: undefined}
  })
  if (values.some((v) => !['ip', 'net', 'port', 'iface', 'mark'].includes(v.part))) return undefined
  let matched = false
  let unsure = false
  for (const m of set.members) {
    // a member of a bitmap:port or hash:ip,port holds its dimensions separated by ','
    const fields = m.value.split(',')
    if (fields.length !== values.length) {
      unsure = true
      continue
    }
    let all = true
    for (let i = 0; i < values.length && all; i++) {
      const v = values[i]!
      const f = fields[i]!
      let r: boolean | undefined
      if (v.part === 'ip' || v.part === 'net') r = addrIn(f, String(v.value))
      else if (v.part === 'port')
        r =
          kind === 'bitmap'
            ? portIn(`${p.protocol}:${f}`, p.protocol, v.value as number | undefined)
            : portIn(f, p.protocol, v.value as number | undefined)
      else if (v.part === 'iface') r = v.value === f
      else r = markSpec(f)?.value === v.value
      if (r === undefined) unsure = true
      all = r === true
    }
    if (!all) continue
    // `nomatch` members of hash:net carve an exception out of a wider one
    if (m.options?.includes('nomatch')) return false
    matched = true
  }
  if (matched) return true
  return unsure ? undefined : false
}

function matchSet(other: string, opts: Opt[], p: XtPacket, env: MatchEnv): XtResult {
  const o = opts.find((x) => x.name === '--match-set' || x.name === '--set')
  const [name, flags] = o?.values ?? []
  if (!o || !name || !flags) return unknown(`${other}: no set name and flags`)
  if (!env.ipsets) return unknown(`${other}: ${env.ipsetsMissing ?? 'the ipsets were not collected'}`)
  const set = env.ipsets.find((s) => s.name === name)
  if (!set) return unknown(`${other}: no ipset ${name} in the snapshot (the kernel would not have accepted the rule)`)
  const r = setHolds(set, flags.split(','), p, env, 0)
  if (r === undefined) return unknown(`${other}: members of ${set.type} set ${name} not modelled for this packet`)
  return is(r !== o.negated)
}

// ---- addrtype -----------------------------------------------------------------------------------

function matchAddrtype(other: string, opts: Opt[], p: XtPacket, env: MatchEnv): XtResult {
  if (!env.addrType) return unknown(`${other}: the node's local table is not known here`)
  const limitIn = has(opts, '--limit-iface-in')
  const limitOut = has(opts, '--limit-iface-out')
  const dev = limitIn ? p.in : limitOut ? p.out : undefined
  if ((limitIn || limitOut) && dev === undefined)
    return unknown(`${other}: no ${limitIn ? 'input' : 'output'} interface at this hook`)
  for (const o of opts) {
    if (o.name !== '--src-type' && o.name !== '--dst-type') continue
    const ip = o.name === '--src-type' ? p.src : p.dst
    const t = env.addrType(ip, dev)
    if (t === undefined) return unknown(`${other}: the address type of ${ip} is not known`)
    const wanted = (o.values[0] ?? '').split(',').map((x) => x.toUpperCase())
    if (wanted.includes(t) === o.negated) return no
  }
  return yes
}

// ---- statistic ----------------------------------------------------------------------------------

function matchStatistic(other: string, opts: Opt[]): XtResult {
  const mode = opts.find((o) => o.name === '--mode')?.values[0]
  const inverted = opts.find((o) => o.name === '--mode')?.negated ?? false
  if (mode === 'random') {
    const prob = Number(opts.find((o) => o.name === '--probability')?.values[0])
    if (!Number.isFinite(prob) || prob < 0 || prob > 1) return unknown(`${other}: no probability`)
    const p = inverted ? 1 - prob : prob
    return p >= 1
      ? yes
      : p <= 0
        ? no
        : {result: 'random', probability: p, what: `statistic random ${formatProbability(p)}`}
  }
  if (mode === 'nth') {
    const every = Number(opts.find((o) => o.name === '--every')?.values[0])
    if (!Number.isInteger(every) || every < 1) return unknown(`${other}: no --every`)
    // which packet of the cycle this one is depends on the counter: one in `every` matches
    const p = inverted ? 1 - 1 / every : 1 / every
    return p >= 1 ? yes : {result: 'random', probability: p, what: `statistic nth: 1 packet in ${every}`}
  }
  return unknown(other)
}

export const formatProbability = (p: number): string => `${Math.round(p * 10000) / 100}%`

// ---- conntrack ----------------------------------------------------------------------------------

function matchConntrack(other: string, opts: Opt[], p: XtPacket): XtResult {
  for (const o of opts) {
    const v = o.values[0] ?? ''
    let r: boolean
    switch (o.name) {
      case '--ctdir':
        if (!p.ctdir) return unknown(`${other}: the packet's direction is not known`)
        r = p.ctdir === v.toUpperCase()
        break
      case '--ctstatus': {
        // a new connection has no status bits; one that saw a reply is SEEN_REPLY and CONFIRMED
        if (!p.ctdir) return unknown(`${other}: the connection's status is not known`)
        const bits = new Set(p.ctdir === 'REPLY' ? ['SEEN_REPLY', 'CONFIRMED'] : [])
        if (
          v
            .split(',')
            .some((x) => !['NONE', 'SEEN_REPLY', 'CONFIRMED', 'ASSURED', 'EXPECTED'].includes(x.toUpperCase()))
        )
          return unknown(other)
        if (v.toUpperCase().includes('ASSURED') || v.toUpperCase().includes('EXPECTED'))
          return unknown(`${other}: ASSURED/EXPECTED are not modelled`)
        r = v.split(',').some((x) => (x.toUpperCase() === 'NONE' ? bits.size === 0 : bits.has(x.toUpperCase())))
        break
      }
      case '--ctproto':
        r = v.toLowerCase() === p.protocol.toLowerCase()
        break
      case '--ctorigsrc':
      case '--ctorigdst': {
        const orig = p.ctorig ?? {src: p.src, dst: p.dst}
        r = addrIn(v, o.name === '--ctorigsrc' ? orig.src : orig.dst) === true
        break
      }
      case '--ctorigdstport': {
        const port = p.ctorig?.dport ?? p.dport
        const [lo, hi] = v.split(':').map(Number)
        r = port !== undefined && port >= lo! && port <= (hi ?? lo!)
        break
      }
      default:
        return unknown(other)
    }
    if (r === o.negated) return no
  }
  return yes
}

/** --ctstate values that hold for the packet: its state, and DNAT/SNAT when the connection was translated. */
export function ctStates(ctstate: string, ctnat?: {dnat?: boolean; snat?: boolean}): string[] {
  return [ctstate, ...(ctnat?.dnat ? ['DNAT'] : []), ...(ctnat?.snat ? ['SNAT'] : [])]
}

// ---- physdev ------------------------------------------------------------------------------------

function matchPhysdev(other: string, opts: Opt[], p: XtPacket): XtResult {
  if (!p.phys) return unknown(`${other}: whether the packet crossed a bridge port is not known here`)
  const ph = p.phys
  for (const o of opts) {
    let r: boolean
    const v = o.values[0] ?? ''
    const ifm = (dev: string | undefined): boolean =>
      dev !== undefined && (v.endsWith('+') ? dev.startsWith(v.slice(0, -1)) : dev === v)
    switch (o.name) {
      case '--physdev-in':
        r = ifm(ph.in)
        break
      case '--physdev-out':
        r = ifm(ph.out)
        break
      case '--physdev-is-in':
        r = ph.in !== undefined
        break
      case '--physdev-is-out':
        r = ph.out !== undefined
        break
      case '--physdev-is-bridged':
        r = ph.bridged === true
        break
      default:
        return unknown(other)
    }
    if (r === o.negated) return no
  }
  return yes
}

// ---- recent -------------------------------------------------------------------------------------

/**
 * xt_recent as the kernel evaluates it: `--set` adds the address and matches; `--rcheck`/`--update`
 * match when the list holds the address (source, or destination with --rdest, under --mask) and,
 * with --seconds/--hitcount, when enough of its packets' times fall in the last that many seconds;
 * `--remove` matches when it holds it. kube-proxy's ClientIP affinity is `--set` in a KUBE-SEP chain
 * and `--rcheck --seconds T --reap` in its KUBE-SVC chain. The walk reads the lists as the node had
 * them when collected.
 */
function matchRecent(other: string, opts: Opt[], p: XtPacket, env: MatchEnv): XtResult {
  const mode = opts.find((o) => ['--set', '--rcheck', '--update', '--remove'].includes(o.name))
  const invert = mode?.negated ?? false
  if (!mode || mode.name === '--set') return is(!invert)
  if (has(opts, '--rttl')) return unknown(`${other}: --rttl (the TTL of the packets seen) is not modelled`)
  if (!env.recent) return unknown(`${other}: ${env.recentMissing ?? 'the recent lists were not collected'}`)
  const name = opts.find((o) => o.name === '--name')?.values[0] ?? 'DEFAULT'
  const address = has(opts, '--rdest') ? p.dst : p.src
  const ip = parseIp(address)
  if (!ip) return unknown(`${other}: ${address} is not an address`)
  const maskText = opts.find((o) => o.name === '--mask')?.values[0]
  let key = ip
  if (maskText !== undefined && ip.family === 'inet') {
    const mask = ipv4ToNumber(maskText)
    if (mask === undefined) return unknown(`${other}: --mask ${maskText} is not an IPv4 mask`)
    key = mustIp(numberToIPv4((ipv4ToNumber(ip.text)! & mask) >>> 0))
  }
  const table = env.recent.tables.find((t) => t.name === name)
  const entry = table?.entries.find((e) => sameIp(parseIp(e.address), key))
  if (!entry) return is(invert)
  const seconds = Number(opts.find((o) => o.name === '--seconds')?.values[0] ?? 0)
  const hitcount = Number(opts.find((o) => o.name === '--hitcount')?.values[0] ?? 0)
  if (mode.name === '--remove' || (!seconds && !hitcount)) return is(!invert)
  const {jiffies, hz} = env.recent
  if (seconds && (jiffies === undefined || hz === undefined))
    return unknown(
      `${other}: the kernel's clock (jiffies and HZ) was not read, so the age of ${key.text}'s entry is not known`,
    )
  const since = seconds ? jiffies! - seconds * hz! : -Infinity
  const stamps = entry.stamps.length > 0 ? entry.stamps : [entry.lastSeen]
  const hits = stamps.filter((t) => t >= since).length
  const matched = (hitcount ? hits >= hitcount : hits > 0) !== invert
  // a match on what the list remembers of this address (ClientIP affinity), not on the packet alone
  return matched && !invert ? {result: 'yes', remembered: `recent list ${name}`} : is(matched)
}
