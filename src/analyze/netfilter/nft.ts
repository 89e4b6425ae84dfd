import type {NftChain, NftExpr, NftRule, NftSet, NftTable} from '../../model/netfilter.js'
import {cidrContains, parseCidr, parseIp} from '../ip.js'
import {type ChainEnd, type ChainResult, chainResult, withAlternatives} from './filter-result.js'
import {dscpNumber, icmpCodeNumber, icmpTypeSpec, tcpFlagMask} from './header-fields.js'
import {protoNumber} from './iptables-match.js'
import {ctStates, formatProbability, type MatchEnv, type XtPacket} from './xt-match.js'

/**
 * The walk of a packet through one nftables base chain, as the kernel does
 * it: rules in order, each a sequence of expressions that must all hold;
 * jump/goto/return; verdict maps (named or anonymous) and sets, with
 * concatenations, prefixes and ranges; `fib daddr type` and the reverse path
 * filter `fib saddr . iif oif`, `ct state`, `meta mark` and `mark set`; the
 * header fields a host firewall matches (`icmp type`, `tcp flags`, `ip ttl`,
 * `ip length`, `ip dscp`, `meta pkttype`), `limit` and `ct count`;
 * `numgen random mod N` splits the walk into N alternatives. A rule with an
 * expression netctl cannot evaluate is taken as not matching, and said so;
 * when its verdict could have changed the result the result is uncertain.
 */

export type NftVerdict = 'accept' | 'drop' | 'reject'

export interface NftPacket extends XtPacket {
  ctstate: string
}

/**
 * One way through an nftables chain: evidence holds the `jump X` rules taken, the deciding rule and the
 * rules passed over as not evaluable; nat is the dnat/snat/masquerade/redirect the deciding rule asks for.
 */
export interface NftResult extends ChainResult<
  NftRule,
  NftVerdict,
  {kind: string; stmt: Record<string, unknown>},
  NftPacket,
  {rule: NftRule; why: string}
> {
  alternatives?: NftResult[]
  /**
   * The commented verdict map element the verdict came through (the innermost on its way): kube-proxy names
   * the Service in the comment of each `no-endpoint-services` / `no-endpoint-nodeports` element
   */
  element?: VmapElement
  /** the first rule whose verdict was taken because the packet was in a dynamic set (ClientIP affinity's lookup) */
  remembered?: string
  /** the rule whose `notrack` let the packet go untracked (raw priority) */
  untrackedBy?: string
}

/** A verdict map element the packet's key found: the map, the element as `nft list map` prints it, its comment. */
export interface VmapElement {
  map: string
  /** `172.21.0.99 . tcp . 80 comment "default/no-endpoints:http" : goto reject-chain` */
  text: string
  comment: string
}

const MAX_DEPTH = 32
const MAX_ALTERNATIVES = 1024

class Unknown extends Error {}

interface Ctx {
  table: NftTable
  p: NftPacket
  env: MatchEnv
  evidence: string[]
  unknown: Array<{rule: NftRule; why: string; would?: NftVerdict}>
  choices: number[]
  taken: Array<{n: number; value: number; what: string}>
  /** the commented vmap element the verdict came through (set once, as the verdict is returned) */
  element?: VmapElement
  /** the rule being evaluated matched on a dynamic set, i.e. on what earlier packets left there */
  lookup?: string
  /** the first rule taken on such a match */
  remembered?: string
  /** the rule whose `notrack` let the packet go untracked */
  untrackedBy?: string
  /** what the rule being evaluated took for granted to match (a rate limit not reached) */
  assumed?: string
  /** the base chain is of type route (its mark or addresses changed make the kernel route the packet again) */
  routeChain?: boolean
}

type Outcome = ChainEnd<NftRule, NftVerdict, NftResult['nat']>

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

const IP_FIELDS: Record<string, 'src' | 'dst'> = {saddr: 'src', daddr: 'dst'}

/** The value of a left-hand expression for the packet; Unknown when netctl cannot tell. */
function evalExpr(ctx: Ctx, e: unknown): unknown {
  const p = ctx.p
  if (!isObj(e)) return e
  if (isObj(e.payload)) {
    const {protocol, field} = e.payload as {protocol?: string; field?: string}
    if ((protocol === 'ip' || protocol === 'ip6') && field && IP_FIELDS[field]) {
      const ip = IP_FIELDS[field] === 'src' ? p.src : p.dst
      const fam = parseIp(ip)?.family
      if ((protocol === 'ip') !== (fam === 'inet'))
        throw new Unknown(`${protocol} ${field} of a packet of the other family`)
      return ip
    }
    if (protocol === 'ip' && field === 'protocol') return protoNumber(p.protocol)
    // a field of another header than the packet's: nft's implicit dependency (`meta l4proto tcp`) fails
    if (field === 'sport' || field === 'dport') {
      if (protocol !== 'th' && protoNumber(protocol ?? '') !== protoNumber(p.protocol)) return undefined
      return field === 'sport' ? p.sport : p.dport
    }
    if ((protocol === 'icmp' || protocol === 'icmpv6') && (field === 'type' || field === 'code')) {
      const v6 = parseIp(p.dst)?.family === 'inet6'
      if (protoNumber(p.protocol) !== (v6 ? 58 : 1) && p.protocol !== 'icmp') return undefined
      if ((protocol === 'icmpv6') !== v6) return undefined
      if (!p.icmp) throw new Unknown(`${protocol} ${field}: the packet's ICMP type is not known here`)
      return field === 'type' ? p.icmp.type : p.icmp.code
    }
    if (protocol === 'tcp' && field === 'flags') {
      if (protoNumber(p.protocol) !== 6) return undefined
      if (p.tcpFlags === undefined) throw new Unknown(`tcp flags: the segment's flags are not known here`)
      return p.tcpFlags
    }
    if (protocol === 'ip' || protocol === 'ip6') {
      if ((protocol === 'ip6') !== (parseIp(p.dst)?.family === 'inet6')) return undefined
      const v =
        field === 'ttl' || field === 'hoplimit'
          ? p.ttl
          : field === 'length' && protocol === 'ip'
            ? p.length
            : field === 'dscp' && p.tos !== undefined
              ? p.tos >> 2
              : undefined
      if (v === undefined) throw new Unknown(`${protocol} ${field}`)
      return v
    }
    throw new Unknown(`${protocol} ${field}`)
  }
  if (isObj(e.meta)) {
    const key = String(e.meta.key)
    switch (key) {
      case 'l4proto':
        return protoNumber(p.protocol)
      case 'nfproto':
      case 'protocol':
        return parseIp(p.dst)?.family === 'inet6' ? 'ipv6' : 'ipv4'
      case 'iifname':
      case 'iif':
        if (p.in === undefined) throw new Unknown(`meta ${key} where the packet has no input interface`)
        return p.in
      case 'oifname':
      case 'oif':
        if (p.out === undefined) throw new Unknown(`meta ${key} where the packet has no output interface`)
        return p.out
      case 'mark':
        return p.mark
      case 'pkttype':
        // a traced packet is unicast to this host at every hook (br_netfilter shows a bridged frame as the host's)
        return PKTTYPES.host
      default:
        throw new Unknown(`meta ${key}`)
    }
  }
  if (isObj(e.ct)) {
    const key = String(e.ct.key)
    if (key === 'state') return ctStates(p.ctstate, p.ctnat).map((s) => s.toLowerCase())
    if (key === 'status')
      return [
        ...(p.ctnat?.dnat ? ['dnat'] : []),
        ...(p.ctnat?.snat ? ['snat'] : []),
        ...(p.ctdir === 'REPLY' ? ['seen-reply', 'confirmed'] : []),
      ]
    if (key === 'mark') return p.ctmark ?? 0
    if (key === 'direction') {
      if (!p.ctdir) throw new Unknown('ct direction')
      return p.ctdir.toLowerCase()
    }
    throw new Unknown(`ct ${key}`)
  }
  if (isObj(e.fib)) {
    const flags = Array.isArray(e.fib.flags) ? e.fib.flags.map(String) : []
    if (e.fib.result === 'type' && (flags[0] === 'daddr' || flags[0] === 'saddr')) {
      const ip = flags[0] === 'daddr' ? p.dst : p.src
      const dev = flags.includes('iif') ? p.in : flags.includes('oif') ? p.out : undefined
      const t = ctx.env.addrType?.(ip, dev)
      if (t === undefined) throw new Unknown(`fib ${flags.join(' . ')} type`)
      return t.toLowerCase()
    }
    // the reverse path filter (`fib saddr . iif oif missing drop`): the route back to the source, through the
    // input interface with iif (strict) or any (loose), by the packet's mark with mark; none, or a local one: missing
    if (e.fib.result === 'oif' && flags[0] === 'saddr' && flags.every((f) => ['saddr', 'iif', 'mark'].includes(f))) {
      const found = ctx.env.rpfilter?.({
        loose: !flags.includes('iif'),
        validmark: flags.includes('mark'),
        acceptLocal: false,
      })
      if (found === undefined)
        throw new Unknown(
          `fib ${flags.join(' . ')} oif: the reverse path lookup needs the node's routes and the input interface`,
        )
      return found
    }
    throw new Unknown(`fib ${flags.join(' . ')} ${String(e.fib.result)}`)
  }
  if (isObj(e.numgen)) {
    const mod = Number(e.numgen.mod)
    const offset = Number(e.numgen.offset ?? 0)
    if (!Number.isInteger(mod) || mod < 1) throw new Unknown('numgen')
    // random and inc alike: each value is one way through, with probability 1/mod
    const i = ctx.taken.length
    const value = i < ctx.choices.length ? ctx.choices[i]! : 0
    ctx.taken.push({n: mod, value, what: `numgen ${String(e.numgen.mode)} mod ${mod} = ${offset + value}`})
    return offset + value
  }
  if (Array.isArray(e.concat)) return e.concat.map((x) => evalExpr(ctx, x))
  for (const op of ['&', '|', '^'] as const) {
    const args = e[op]
    if (Array.isArray(args) && args.length === 2) {
      const field = evalExpr(ctx, args[0])
      if (field === undefined) return undefined
      const a = Number(field)
      const b = Number(named(namedKind(args[0]), args[1]))
      if (Number.isNaN(a) || Number.isNaN(b)) throw new Unknown(`a ${op} of something not a number`)
      return (op === '&' ? a & b : op === '|' ? a | b : a ^ b) >>> 0
    }
  }
  throw new Unknown(Object.keys(e)[0] ?? 'expression')
}

/** The packet types `meta pkttype` names (the kernel's PACKET_HOST ...). */
const PKTTYPES = {host: 0, unicast: 0, broadcast: 1, multicast: 2, other: 3} as const

/** A left-hand expression whose right-hand values nft lists by name (`echo-request`, `syn`, `cs1`, `host`). */
type Named = 'icmp type' | 'icmpv6 type' | 'icmp code' | 'tcp flags' | 'dscp' | 'pkttype'

function namedKind(e: unknown): Named | undefined {
  if (!isObj(e)) return undefined
  const amp = e['&']
  if (Array.isArray(amp)) return namedKind(amp[0])
  if (isObj(e.meta)) return e.meta.key === 'pkttype' ? 'pkttype' : undefined
  if (!isObj(e.payload)) return undefined
  const {protocol, field} = e.payload as {protocol?: string; field?: string}
  if (field === 'type' && (protocol === 'icmp' || protocol === 'icmpv6')) return `${protocol} type`
  if (field === 'code' && (protocol === 'icmp' || protocol === 'icmpv6')) return 'icmp code'
  if (protocol === 'tcp' && field === 'flags') return 'tcp flags'
  if (field === 'dscp') return 'dscp'
  return undefined
}

/**
 * A right-hand value with its names read as numbers, for a left-hand side of kind `kind`; a list of TCP
 * flags (`["syn", "ack"]`) is their mask. Other values (and names not known) are left as they are.
 */
function named(kind: Named | undefined, v: unknown): unknown {
  if (!kind) return v
  if (Array.isArray(v) && kind === 'tcp flags') return tcpFlagMask(v.map(String).join(',')) ?? v
  if (isObj(v) && Array.isArray(v.set)) return {set: v.set.map((x) => named(kind, x))}
  if (isObj(v) && Array.isArray(v.range)) return {range: v.range.map((x) => named(kind, x))}
  if (typeof v !== 'string') return v
  const n =
    kind === 'icmp type' || kind === 'icmpv6 type'
      ? icmpTypeSpec(v, kind === 'icmpv6 type')?.type
      : kind === 'icmp code'
        ? icmpCodeNumber(v)
        : kind === 'tcp flags'
          ? tcpFlagMask(v)
          : kind === 'dscp'
            ? dscpNumber(v)
            : PKTTYPES[v as keyof typeof PKTTYPES]
  return n ?? v
}

/** Whether a packet value equals one right-hand value (a literal, prefix, range, concatenation). */
function equals(have: unknown, want: unknown): boolean {
  if (Array.isArray(have) && isObj(want) && Array.isArray(want.concat)) {
    return want.concat.length === have.length && want.concat.every((w, i) => equals(have[i], w))
  }
  if (isObj(want) && isObj(want.elem)) return equals(have, want.elem.val)
  if (isObj(want) && isObj(want.prefix)) {
    const c = parseCidr(`${String(want.prefix.addr)}/${String(want.prefix.len)}`)
    const a = typeof have === 'string' ? parseIp(have) : undefined
    return !!c && !!a && c.ip.family === a.family && cidrContains(c, a)
  }
  if (isObj(want) && Array.isArray(want.range)) {
    const [lo, hi] = want.range
    if (typeof have === 'number') return have >= Number(lo) && have <= Number(hi)
    const a = typeof have === 'string' ? parseIp(have) : undefined
    const l = parseIp(String(lo))
    const h = parseIp(String(hi))
    if (!a || !l || !h) return false
    const n = (x: {bytes: Uint8Array}): bigint => x.bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n)
    return n(a) >= n(l) && n(a) <= n(h)
  }
  // `fib … oif exists` / `missing`
  if (typeof have === 'boolean') return have === want
  if (typeof have === 'number') {
    if (typeof want === 'number') return have === want
    if (typeof want === 'string') return protoNumber(want) === have || Number(want) === have
    return false
  }
  if (typeof have === 'string' && typeof want === 'string') {
    // interface names: a trailing * is a wildcard
    if (want.endsWith('*') && !want.startsWith('@')) return have.startsWith(want.slice(0, -1))
    const a = parseIp(have)
    const b = parseIp(want)
    if (a && b) return a.text === b.text
    return have === want
  }
  if (Array.isArray(have)) return have.some((h) => equals(h, want))
  return false
}

/**
 * Whether a rule of the table fills the set from the packet path (`update @set { ip saddr }`, `add @set …`:
 * kube-proxy's ClientIP affinity): a match on it is a match on what earlier packets left there. (Whether the
 * set says `flags dynamic` depends on the nft that lists it, so the rules are what tell.) Asked only of a
 * lookup that matched.
 */
function filledByPackets(table: NftTable, ref: string): boolean {
  return table.chains.some((c) => c.rules.some((r) => r.expr.some((e) => isObj(e.set) && e.set.set === ref)))
}

function setOf(ctx: Ctx, ref: string): NftSet {
  const s = ctx.table.sets.find((x) => x.name === ref.slice(1))
  if (!s) throw new Unknown(`set ${ref} not in table ${ctx.table.family} ${ctx.table.name}`)
  return s
}

/** The elements a right-hand side stands for: an anonymous set, a named set (`@name`), or one value. */
function members(ctx: Ctx, right: unknown): Array<{key: unknown; value?: unknown}> {
  if (typeof right === 'string' && right.startsWith('@')) return setOf(ctx, right).elements
  if (isObj(right) && Array.isArray(right.set))
    return right.set.map((x) => (Array.isArray(x) && x.length === 2 ? {key: x[0], value: x[1]} : {key: x}))
  return [{key: right}]
}

function match(ctx: Ctx, m: Record<string, unknown>): boolean {
  const have = evalExpr(ctx, m.left)
  const op = String(m.op ?? '==')
  // a field the packet does not have (a tcp port of a UDP datagram): nft's implicit dependency fails first
  if (have === undefined) return false
  const kind = namedKind(m.left)
  const right = named(kind, m.right)
  // a bitmask's bare value or list (`tcp flags syn`, `ct state established,related`): any of its bits set
  if (op === 'in' && typeof have === 'number' && kind === 'tcp flags' && typeof right === 'number')
    return (have & right) !== 0
  if (Array.isArray(right) && !(isObj(m.right) && 'set' in m.right)) {
    const any = right.some((r) => equals(have, r))
    return op === '!=' ? !any : any
  }
  const inSet = members(ctx, right).some((x) => equals(have, named(kind, x.key)))
  // a set the packet path fills (`update @set`, flags dynamic): a match on it is a match on remembered state
  if (inSet && op !== '!=' && typeof m.right === 'string' && filledByPackets(ctx.table, m.right)) ctx.lookup = m.right
  switch (op) {
    case '==':
    case 'in':
      return inSet
    case '!=':
      return !inSet
    case '<':
    case '>':
    case '<=':
    case '>=': {
      const a = Number(have)
      const b = Number(m.right)
      if (Number.isNaN(a) || Number.isNaN(b)) throw new Unknown(`${op} on something not a number`)
      return op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b
    }
    default:
      throw new Unknown(`operator ${op}`)
  }
}

type Step = {kind: 'next'} | {kind: 'nomatch'} | {kind: 'verdict'; verdict: unknown; element?: VmapElement}

const NAT_STATEMENTS = new Set(['dnat', 'snat', 'masquerade', 'redirect'])

/** What the rule being evaluated took for granted, added to what it took before. */
const assume = (ctx: Ctx, what: string): void => {
  ctx.assumed = ctx.assumed ? `${ctx.assumed}; ${what}` : what
}

function statement(ctx: Ctx, e: NftExpr): Step {
  const [k] = Object.keys(e)
  const v = e[k!]
  switch (k) {
    case 'match':
      return match(ctx, v as Record<string, unknown>) ? {kind: 'next'} : {kind: 'nomatch'}
    case 'set':
      // `update @set { ip saddr }` (kube-proxy's ClientIP affinity): it records the packet for the
      // next connection's lookup (`ip saddr @set`, read from the set's elements); this packet goes on
      return {kind: 'next'}
    case 'limit': {
      // the bucket's state is the node's: one packet of a flow is taken to stay under the rate, and said so
      const l = (isObj(v) ? v : {}) as {rate?: unknown; per?: unknown; inv?: unknown}
      const rate = `${String(l.rate ?? '?')}/${String(l.per ?? 'second')}`
      if (l.inv === true) return {kind: 'nomatch'}
      assume(ctx, `a rate limit of ${rate}: taken as not reached`)
      return {kind: 'next'}
    }
    case 'ct count': {
      // the connections already counted are the node's: the flow is taken to be within the count, and said so
      const c = (isObj(v) ? v : {}) as {val?: unknown; inv?: unknown}
      if (c.inv === true) return {kind: 'nomatch'}
      assume(ctx, `at most ${String(c.val ?? '?')} connections: taken as not exceeded`)
      return {kind: 'next'}
    }
    case 'counter':
    case 'log':
    case 'notrack':
      if (k === 'notrack') ctx.p = {...ctx.p, ctstate: 'UNTRACKED'}
      return {kind: 'next'}
    case 'accept':
    case 'drop':
    case 'reject':
    case 'return':
    case 'continue':
    case 'jump':
    case 'goto':
      return {kind: 'verdict', verdict: e}
    case 'vmap': {
      const o = v as Record<string, unknown>
      const have = evalExpr(ctx, o.key)
      const hit = members(ctx, o.data).find((x) => equals(have, x.key))
      if (!hit) return {kind: 'nomatch'}
      const comment = (hit as {comment?: unknown}).comment
      return typeof comment === 'string'
        ? {kind: 'verdict', verdict: hit.value, element: vmapElement(o.data, hit, comment)}
        : {kind: 'verdict', verdict: hit.value}
    }
    case 'mangle': {
      const o = v as Record<string, unknown>
      const key = o.key as Record<string, {key?: string}>
      const value = Number(evalExpr(ctx, o.value))
      if (Number.isNaN(value)) throw new Unknown('mangle with a value that is not a number')
      if (key.meta?.key === 'mark') ctx.p = {...ctx.p, mark: value >>> 0}
      else if (key.ct?.key === 'mark') ctx.p = {...ctx.p, ctmark: value >>> 0}
      else throw new Unknown(`${Object.keys(key)[0]} set`)
      return {kind: 'next'}
    }
    default:
      if (k && NAT_STATEMENTS.has(k)) return {kind: 'verdict', verdict: e}
      throw new Unknown(k ?? 'statement')
  }
}

/** An nft value as `nft list` prints it: a concatenation's parts joined by ` . `, a verdict as `goto X`. */
function valueText(v: unknown): string {
  if (Array.isArray(v)) return v.map(valueText).join(' . ')
  if (!isObj(v)) return String(v)
  if (Array.isArray(v.concat)) return v.concat.map(valueText).join(' . ')
  if (isObj(v.prefix)) return `${String(v.prefix.addr)}/${String(v.prefix.len)}`
  if (Array.isArray(v.range)) return v.range.map(valueText).join('-')
  const [k] = Object.keys(v)
  const target = isObj(v[k!]) ? (v[k!] as {target?: unknown}).target : undefined
  return typeof target === 'string' ? `${k} ${target}` : (k ?? '')
}

function vmapElement(data: unknown, hit: {key: unknown; value?: unknown}, comment: string): VmapElement {
  return {
    map: typeof data === 'string' && data.startsWith('@') ? data.slice(1) : 'anonymous',
    text: `${valueText(hit.key)} comment ${JSON.stringify(comment)} : ${valueText(hit.value)}`,
    comment,
  }
}

function chainOf(table: NftTable, name: string): NftChain | undefined {
  return table.chains.find((c) => c.name === name)
}

/** The verdict a rule ends in when it matches, read without evaluating it (for what an unknown rule would do). */
function ruleVerdict(rule: NftRule): NftVerdict | undefined {
  for (const e of rule.expr) {
    if ('drop' in e) return 'drop'
    if ('reject' in e) return 'reject'
    if ('accept' in e) return 'accept'
  }
  return undefined
}

function run(ctx: Ctx, chain: NftChain, depth: number): Outcome {
  if (depth > MAX_DEPTH) return {kind: 'end'}
  rules: for (const rule of chain.rules) {
    const takenBefore = ctx.taken.length
    const saved = ctx.p
    ctx.lookup = undefined
    ctx.assumed = undefined
    for (const e of rule.expr) {
      let step: Step
      try {
        step = statement(ctx, e)
      } catch (error) {
        if (!(error instanceof Unknown)) throw error
        ctx.p = saved
        ctx.taken.length = takenBefore
        const would = ruleVerdict(rule)
        ctx.unknown.push({rule, why: error.message, ...(would ? {would} : {})})
        ctx.evidence.push(`${rule.text}    (cannot tell: ${error.message}; taken as not matching)`)
        continue rules
      }
      if (step.kind === 'nomatch') continue rules
      if (step.kind === 'next') continue
      if (ctx.lookup) ctx.remembered ??= rule.text
      const out = verdict(ctx, chain, rule, step.verdict, depth, step.element)
      if (out === 'continue') continue rules
      return out
    }
    // a route chain's mark routes a locally sent packet again: the rule that set it is evidence
    if (ctx.p.mark !== saved.mark && ctx.routeChain) ctx.evidence.push(rule.text)
    // a rule that let the packet go untracked (raw's notrack) is why the nat chains never see it
    if (ctx.p.ctstate === 'UNTRACKED' && saved.ctstate !== 'UNTRACKED') {
      ctx.evidence.push(rule.text)
      ctx.untrackedBy ??= rule.text
    }
  }
  return {kind: 'end'}
}

function verdict(
  ctx: Ctx,
  chain: NftChain,
  rule: NftRule,
  v: unknown,
  depth: number,
  element?: VmapElement,
): Outcome | 'continue' {
  if (!isObj(v)) return 'continue'
  const [k] = Object.keys(v)
  const taken = [
    ...(ctx.taken.length > 0 ? [`${ctx.taken.map((t) => t.what).join(', ')} on this way`] : []),
    ...(ctx.assumed ? [ctx.assumed] : []),
  ].join('; ')
  const note = taken ? `    (${taken})` : ''
  // a commented element says why (kube-proxy's no-endpoint maps name the Service): shown as nft lists it
  const found = element ? `    (element ${element.text}${taken ? `; ${taken}` : ''})` : undefined
  switch (k) {
    case 'accept':
    case 'drop':
    case 'reject':
      ctx.evidence.push(`${rule.text}${found ?? note}`)
      if (element) ctx.element ??= element
      return {kind: 'verdict', verdict: k, rule, chain: chain.name}
    case 'return':
      ctx.evidence.push(rule.text)
      return {kind: 'return'}
    case 'continue':
      return 'continue'
    case 'jump':
    case 'goto': {
      const target = String((v[k] as {target?: unknown}).target)
      const sub = chainOf(ctx.table, target)
      if (!sub) return 'continue'
      ctx.evidence.push(
        found
          ? `${rule.text}${found}`
          : `${rule.text}${rule.text.includes(target) ? '' : `    (${k} ${target})`}${note}`,
      )
      const out = run(ctx, sub, depth + 1)
      if (out.kind === 'verdict') {
        // the innermost element on the verdict's way was recorded first
        if (element) ctx.element ??= element
        return out
      }
      return k === 'goto' ? {kind: 'return'} : 'continue'
    }
    default:
      if (k && NAT_STATEMENTS.has(k)) {
        ctx.evidence.push(`${rule.text}${note}`)
        return {
          kind: 'verdict',
          verdict: 'accept',
          rule,
          chain: chain.name,
          nat: {kind: k, stmt: (isObj(v[k]) ? v[k] : {}) as Record<string, unknown>},
        }
      }
      return 'continue'
  }
}

function once(
  table: NftTable,
  chain: NftChain,
  p: NftPacket,
  env: MatchEnv,
  choices: number[],
): {result: NftResult; taken: Ctx['taken']} {
  const ctx: Ctx = {
    table,
    p: {...p},
    env,
    evidence: [],
    unknown: [],
    choices,
    taken: [],
    ...(chain.type === 'route' ? {routeChain: true} : {}),
  }
  const out = run(ctx, chain, 0)
  const probability = ctx.taken.reduce((acc, t) => acc / t.n, 1)
  const policy = chain.policy ?? 'accept'
  const result: NftResult = chainResult(
    out,
    {chain: chain.name, verdict: policy, line: `chain ${chain.name} policy ${policy}`},
    {evidence: ctx.evidence, packet: ctx.p, unknown: ctx.unknown},
    probability,
    (v) => v === 'accept',
  )
  if (ctx.element) result.element = ctx.element
  if (ctx.remembered) result.remembered = ctx.remembered
  if (ctx.untrackedBy) result.untrackedBy = ctx.untrackedBy
  return {result, taken: ctx.taken}
}

/** Walk a base chain of `table` for the packet; every numgen value is one alternative. */
export function evaluateNftChain(table: NftTable, chain: NftChain, p: NftPacket, env: MatchEnv = {}): NftResult {
  const ways: NftResult[] = []
  let choices: number[] = []
  for (;;) {
    const {result, taken} = once(table, chain, p, env, choices)
    ways.push(result)
    const last = taken.map((t) => t.value < t.n - 1).lastIndexOf(true)
    if (last < 0 || ways.length >= MAX_ALTERNATIVES) break
    choices = [...taken.slice(0, last).map((t) => t.value), taken[last]!.value + 1]
  }
  return withAlternatives(ways)
}

export function describeNftAlternatives(r: NftResult): string[] {
  return (r.alternatives ?? []).map(
    (a) => `${formatProbability(a.probability)}: ${a.rule?.text ?? `chain ${a.chain} policy ${a.verdict}`}`,
  )
}
