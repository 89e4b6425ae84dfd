/**
 * Reading iptables rule sets for the firewall checks: which rule sets a node
 * has (legacy, nft), the rules a built-in chain reaches in order (jumps into
 * user chains followed), and whether a rule can match a kind of traffic.
 * Only clear cases count: a rule with matches netctl does not model "may"
 * match, and a check never calls a drop certain past a rule that may accept.
 */
import type {Iptables, IptablesRule, IptablesTable, NodeState} from '../../model/node-state.js'

export interface RuleSet {
  /** the tool that prints it */
  tool: 'iptables-save' | 'iptables-legacy-save' | 'iptables-nft-save'
  variant: Iptables['variant']
  iptables: Iptables
}

/** Every iptables rule set the probe read on the node, each once. */
export function ruleSets(state: NodeState): RuleSet[] {
  const out: RuleSet[] = []
  const ok = (s: string): boolean => state.sections[s]?.status === 'ok'
  if (state.iptables && ok('iptables'))
    out.push({tool: 'iptables-save', variant: state.iptables.variant, iptables: state.iptables})
  if (state.iptablesLegacy && ok('iptables-legacy'))
    out.push({tool: 'iptables-legacy-save', variant: 'legacy', iptables: state.iptablesLegacy})
  if (state.iptablesNft && ok('iptables-nft'))
    out.push({tool: 'iptables-nft-save', variant: 'nft', iptables: state.iptablesNft})
  return out
}

export function ruleCount(t: Iptables): number {
  return t.tables.reduce((n, table) => n + table.chains.reduce((m, c) => m + c.rules.length, 0), 0)
}

export function tableOf(t: Iptables, name: string): IptablesTable | undefined {
  return t.tables.find((x) => x.name === name)
}

/** A rule a packet entering a chain may meet; `conditional`: only if a jump or RETURN before it went one way. */
export interface ReachedRule {
  rule: IptablesRule
  conditional: boolean
}

/**
 * The rules a packet entering `chain` meets, in order: a jump or goto into a
 * user chain is followed at that point (each chain once, a few levels deep).
 * The rules of a chain entered by a jump that may not be taken, and those after a
 * RETURN that may be taken (ufw's `-m addrtype --dst-type LOCAL -j RETURN`), are met
 * only conditionally; after a RETURN that surely applies, none of the chain's rest.
 * Without a shape every jump is followed, and only a rule with no match surely applies.
 */
export function reachableRules(
  table: IptablesTable,
  chain: string,
  shape?: TrafficShape,
  depth = 0,
  seen = new Set<string>(),
  conditional = false,
): ReachedRule[] {
  const c = table.chains.find((x) => x.name === chain)
  if (!c || seen.has(chain) || depth > 8) return []
  seen.add(chain)
  const out: ReachedRule[] = []
  let maybe = conditional
  for (const r of c.rules) {
    out.push({rule: r, conditional: maybe})
    // without a shape, only a rule with no match at all surely applies
    const how: Applies = shape !== undefined ? applies(r, shape) : Object.keys(r.match).length === 0 ? 'yes' : 'maybe'
    if (r.target === 'RETURN') {
      if (how === 'yes' && !maybe) break
      if (how !== 'no') maybe = true
      continue
    }
    const isChain = r.target !== undefined && table.chains.some((x) => x.name === r.target && x.policy === undefined)
    // with a shape, a jump the traffic surely does not take (Felix's `-i cali+ -g cali-wl-to-host` for a packet from the uplink) leads nowhere
    if (isChain && how !== 'no')
      out.push(...reachableRules(table, r.target!, shape, depth + 1, seen, maybe || how !== 'yes'))
  }
  return out
}

/** Whether a reached rule matches the traffic: a conditionally reached one at most 'maybe'. */
export function appliesReached(x: ReachedRule, t: TrafficShape): Applies {
  const a = applies(x.rule, t)
  return a === 'yes' && x.conditional ? 'maybe' : a
}

export type Applies = 'no' | 'maybe' | 'yes'

const negated = (r: IptablesRule, field: string): boolean => r.match.negated?.includes(field) ?? false

export interface TrafficShape {
  /** does an address match of the rule concern this traffic? (source or destination CIDR) */
  address: (cidr: string) => boolean
  /** does an interface match concern it? */
  iface: (pattern: string) => boolean
  /** the UDP destination port, for encapsulated traffic; undefined: any protocol and port */
  udpPort?: number
}

/** A `--dport` / `--dports` value ("8472", "8000:9000", "53,8472") against a port. */
export function portMatches(spec: string, port: number): boolean {
  return spec.split(',').some((part) => {
    const [a, b] = part.split(':')
    const lo = Number(a || 0)
    const hi = b === undefined ? lo : Number(b || 65535)
    return port >= lo && port <= hi
  })
}

/**
 * Whether a rule matches new packets of a kind of traffic: 'yes' when every
 * match it has concerns that traffic, 'no' when one clearly does not,
 * 'maybe' when it depends on something netctl does not model.
 */
export function applies(r: IptablesRule, t: TrafficShape): Applies {
  const m = r.match
  let result: Applies = 'yes'
  // only already-tracked (or INVALID) packets: not the first packet of a flow
  if (m.ctstate && !negated(r, 'ctstate') && !m.ctstate.includes('NEW')) return 'no'
  if (m.ctstate && (negated(r, 'ctstate') || m.ctstate.length > 1)) result = 'maybe'
  for (const field of ['source', 'destination'] as const) {
    const v = m[field]
    if (!v) continue
    if (negated(r, field)) result = 'maybe'
    else if (!t.address(v)) return 'no'
  }
  for (const field of ['inInterface', 'outInterface'] as const) {
    const v = m[field]
    if (!v) continue
    if (negated(r, field)) result = 'maybe'
    else if (!t.iface(v)) return 'no'
  }
  if (t.udpPort !== undefined) {
    if (m.protocol && !negated(r, 'protocol') && m.protocol !== 'udp' && m.protocol !== 'all') return 'no'
    if (m.dport && !negated(r, 'dport') && !portMatches(m.dport, t.udpPort)) return 'no'
    if (m.sport || negated(r, 'dport') || negated(r, 'protocol')) result = 'maybe'
  } else if (m.protocol || m.dport || m.sport) {
    // only part of the traffic (one protocol or port)
    result = 'maybe'
  }
  if (m.other && m.other.length > 0) result = 'maybe'
  return result
}

export const isAccept = (r: IptablesRule): boolean => r.target === 'ACCEPT'
export const isDrop = (r: IptablesRule): boolean => r.target === 'DROP' || r.target === 'REJECT'
