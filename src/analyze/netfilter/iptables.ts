import type {Iptables, IptablesChain, IptablesRule, IptablesTable} from '../../model/node-state.js'
import {type ChainEnd, type ChainResult, chainResult, withAlternatives} from './filter-result.js'
import {applyConnmark, applyMark, type FilterPacket, matchRule} from './iptables-match.js'
import {formatProbability, type MatchEnv} from './xt-match.js'

/**
 * The walk of a packet through one built-in chain of an iptables table, as
 * the kernel does it: rules in order, jumps into user chains and back on
 * RETURN or at their end, -g gotos that return to the caller's caller, and
 * the built-in chain's policy when nothing decided. MARK and CONNMARK change
 * the packet as it goes (a later rule, or a later table, reads the mark). A
 * rule that also matches on something netctl cannot evaluate is taken as not
 * matching, and said so; when such a rule could have changed the verdict the
 * result is uncertain. A statistic match splits the walk: each way is an
 * alternative with its probability.
 */

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT'

/**
 * One way through an iptables chain: evidence holds the jumps taken, the deciding rule or policy and every
 * rule passed over as not evaluable; the packet leaves with its mark and connection mark after MARK/CONNMARK.
 */
export interface FilterResult extends ChainResult<
  IptablesRule,
  Verdict,
  NatTarget,
  FilterPacket,
  {rule: IptablesRule; unmodelled: string[]}
> {
  /**
   * When statistic matches split the walk: every way through, this one
   * (the most likely) included, each with its probability.
   */
  alternatives?: FilterResult[]
  /** the first rule taken because it matched on remembered state (ClientIP affinity's `--rcheck`) */
  remembered?: string
  /** the rule that let the packet go untracked (raw's NOTRACK, `CT --notrack`) */
  untrackedBy?: string
}

const TERMINAL = new Set(['ACCEPT', 'DROP', 'REJECT'])
/** nat table targets: they end the walk of the nat table (the connection's translation is decided) */
const NAT_TARGETS = new Set(['DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT'])
const MAX_DEPTH = 32
/** Ways through one chain walked at most (a Service with more endpoints is cut, and said so); kube-proxy gives one way per endpoint. */
export const MAX_ALTERNATIVES = 1024

type Outcome = ChainEnd<IptablesRule, Verdict, NatTarget>

/** A translation a nat-table rule decided: the target and its options as iptables-save wrote them. */
export interface NatTarget {
  target: 'DNAT' | 'SNAT' | 'MASQUERADE' | 'REDIRECT'
  args: string[]
}

interface Choice {
  rule: IptablesRule
  probability: number
  took: boolean
  what: string
}

interface Ctx {
  table: IptablesTable
  p: FilterPacket
  env: MatchEnv
  evidence: string[]
  /** evaluating what an unmodelled rule would do: no evidence, no nested guesses */
  sandbox: boolean
  unknown: Array<{rule: IptablesRule; unmodelled: string[]; would?: Verdict}>
  /** decisions forced for the statistic rules met, in order; past its end a rule is taken as matching */
  choices: boolean[]
  taken: Choice[]
  /** the first rule taken on remembered state */
  remembered?: string
  /** the NOTRACK rule taken */
  untrackedBy?: string
}

function chainOf(table: IptablesTable, name: string): IptablesChain | undefined {
  return table.chains.find((c) => c.name === name)
}

function run(ctx: Ctx, chain: IptablesChain, depth: number): Outcome {
  if (depth > MAX_DEPTH) return {kind: 'end'}
  for (const rule of chain.rules) {
    const {result, unmodelled, random, remembered, assumed} = matchRule(rule, ctx.p, ctx.env)
    if (result === 'no') continue
    // the rule as evidence; with what was taken for granted to match it (a rate limit not reached)
    const line = assumed ? `${rule.raw}    (${assumed})` : rule.raw
    if (remembered && !ctx.sandbox) ctx.remembered ??= rule.raw
    if (result === 'unknown') {
      if (ctx.sandbox) continue
      const would = whatIf(ctx, rule, depth)
      ctx.unknown.push({rule, unmodelled, ...(would ? {would} : {})})
      ctx.evidence.push(`${rule.raw}    (cannot tell: ${unmodelled.join('; ')}; taken as not matching)`)
      continue
    }
    if (random) {
      const i = ctx.taken.length
      const took = i < ctx.choices.length ? ctx.choices[i]! : true
      ctx.taken.push({rule, probability: random.probability, took, what: random.what})
      if (!ctx.sandbox)
        ctx.evidence.push(
          `${rule.raw}    (${random.what}: ${took ? 'taken' : 'not taken'} on this way${assumed ? `; ${assumed}` : ''})`,
        )
      if (!took) continue
    }
    const target = rule.target ?? ''
    if (TERMINAL.has(target)) {
      if (!ctx.sandbox && !random) ctx.evidence.push(line)
      return {kind: 'verdict', verdict: target as Verdict, rule, chain: chain.name}
    }
    if (target === 'RETURN') {
      if (!ctx.sandbox && !random) ctx.evidence.push(line)
      return {kind: 'return'}
    }
    if (NAT_TARGETS.has(target) && ctx.table.name === 'nat') {
      if (!ctx.sandbox && !random) ctx.evidence.push(line)
      return {
        kind: 'verdict',
        verdict: 'ACCEPT',
        rule,
        chain: chain.name,
        nat: {target: target as NatTarget['target'], args: rule.targetArgs ?? []},
      }
    }
    if (target === 'MARK') {
      const next = applyMark(rule.targetArgs ?? [], ctx.p.mark)
      // mangle's mark routes a locally sent packet again (ip_route_me_harder): the rule is evidence
      if (next !== undefined && next !== ctx.p.mark && ctx.table.name === 'mangle' && !ctx.sandbox && !random)
        ctx.evidence.push(line)
      if (next !== undefined) ctx.p = {...ctx.p, mark: next}
      continue
    }
    if (target === 'CONNMARK') {
      const next = applyConnmark(rule.targetArgs ?? [], ctx.p.mark, ctx.p.ctmark ?? 0)
      if (next) ctx.p = {...ctx.p, mark: next.mark, ctmark: next.ctmark}
      continue
    }
    if (target === 'NOTRACK' || (target === 'CT' && (rule.targetArgs ?? []).includes('--notrack'))) {
      // raw: conntrack leaves this packet alone; later tables see it UNTRACKED, and nat never sees it
      if (!ctx.sandbox && !random) ctx.evidence.push(line)
      if (!ctx.sandbox) ctx.untrackedBy ??= rule.raw
      ctx.p = {...ctx.p, ctstate: 'UNTRACKED'}
      continue
    }
    const sub = chainOf(ctx.table, target)
    if (!sub) continue // LOG, ...: non-terminating targets
    if (!ctx.sandbox && !random) ctx.evidence.push(line)
    const out = run(ctx, sub, depth + 1)
    if (out.kind === 'verdict') return out
    // -g: a RETURN (or the end) of the goto chain returns from this chain too
    if (rule.goto) return {kind: 'return'}
  }
  return {kind: 'end'}
}

/** What an unmodelled rule would decide if it matched (a jump is followed without evidence). */
function whatIf(ctx: Ctx, rule: IptablesRule, depth: number): Verdict | undefined {
  const target = rule.target ?? ''
  if (TERMINAL.has(target)) return target as Verdict
  const sub = chainOf(ctx.table, target)
  if (!sub) return undefined
  const sandbox: Ctx = {...ctx, evidence: [], sandbox: true, unknown: [], choices: [], taken: []}
  const out = run(sandbox, sub, depth + 1)
  return out.kind === 'verdict' ? out.verdict : undefined
}

const accepts = (v: Verdict): boolean => v === 'ACCEPT'

/** One way through the chain, with the statistic decisions forced by `choices`. */
function once(
  table: IptablesTable,
  chain: IptablesChain,
  p: FilterPacket,
  env: MatchEnv,
  choices: boolean[],
): {result: FilterResult; taken: Choice[]} {
  const ctx: Ctx = {table, p: {...p}, env, evidence: [], sandbox: false, unknown: [], choices, taken: []}
  const out = run(ctx, chain, 0)
  const probability = ctx.taken.reduce((acc, c) => acc * (c.took ? c.probability : 1 - c.probability), 1)
  const policy = (chain.policy ?? 'ACCEPT').toUpperCase()
  const result: FilterResult = chainResult(
    out,
    {
      chain: chain.name,
      verdict: policy === 'DROP' || policy === 'REJECT' ? 'DROP' : 'ACCEPT',
      line: `-P ${chain.name} ${policy}`,
    },
    {evidence: ctx.evidence, packet: ctx.p, unknown: ctx.unknown},
    probability,
    accepts,
  )
  if (ctx.remembered) result.remembered = ctx.remembered
  if (ctx.untrackedBy) result.untrackedBy = ctx.untrackedBy
  return {result, taken: ctx.taken}
}

/**
 * Walk `chain` of `tableName` (filter unless said). undefined when the ruleset
 * has no such table or chain: then nothing filters there. `env` gives the
 * extension matches what they read besides the packet (ipsets, the local
 * table, the FIB); without it they are unknown.
 */
export function evaluateChain(
  ipt: Iptables,
  chainName: string,
  p: FilterPacket,
  tableName = 'filter',
  env: MatchEnv = {},
): FilterResult | undefined {
  const table = ipt.tables.find((t) => t.name === tableName)
  const chain = table ? chainOf(table, chainName) : undefined
  if (!table || !chain) return undefined
  // every combination of statistic decisions, depth first: flip the last one taken
  const ways: FilterResult[] = []
  let choices: boolean[] = []
  for (;;) {
    const {result, taken} = once(table, chain, p, env, choices)
    ways.push(result)
    const last = taken.map((c) => c.took).lastIndexOf(true)
    if (last < 0 || ways.length >= MAX_ALTERNATIVES) {
      if (last >= 0)
        result.evidence.push(`(more than ${MAX_ALTERNATIVES} ways through ${chainName}: the rest not walked)`)
      break
    }
    choices = [...taken.slice(0, last).map((c) => c.took), false]
  }
  return withAlternatives(ways)
}

/** `50%: -A ... -j KUBE-SEP-X` lines for the alternatives of a split walk. */
export function describeAlternatives(r: FilterResult): string[] {
  return (r.alternatives ?? []).map(
    (a) => `${formatProbability(a.probability)}: ${a.rule?.raw ?? `-P ${a.chain} ${a.verdict}`}`,
  )
}

/** A chain with no rules and an ACCEPT policy decides nothing worth showing. */
export function chainIsEmpty(ipt: Iptables, chainName: string, tableName = 'filter'): boolean {
  const chain = ipt.tables.find((t) => t.name === tableName)?.chains.find((c) => c.name === chainName)
  return !chain || (chain.rules.length === 0 && (chain.policy ?? 'ACCEPT').toUpperCase() === 'ACCEPT')
}
