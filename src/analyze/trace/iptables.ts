import type {Iptables, IptablesChain, IptablesRule, IptablesTable} from '../../model/node-state.js'
import {applyMark, type FilterPacket, matchRule} from './iptables-match.js'

/**
 * The walk of a packet through one built-in chain of iptables' filter table,
 * as the kernel does it: rules in order, jumps into user chains and back on
 * RETURN or at their end, -g gotos that return to the caller's caller, and
 * the built-in chain's policy when nothing decided. A rule that also matches
 * on something netctl does not model is taken as not matching, and said so;
 * when such a rule could have changed the verdict the result is uncertain.
 */

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT'

export interface FilterResult {
  verdict: Verdict
  /** the rule that decided; absent when the chain's policy did */
  rule?: IptablesRule
  /** the chain the decision was taken in */
  chain: string
  /** jumps taken, the deciding rule or policy, and every rule passed over as not modelled */
  evidence: string[]
  /** rules netctl cannot evaluate that would change the verdict had they matched */
  uncertain: Array<{rule: IptablesRule; unmodelled: string[]}>
}

const TERMINAL = new Set(['ACCEPT', 'DROP', 'REJECT'])
const MAX_DEPTH = 32

type Outcome = {kind: 'verdict'; verdict: Verdict; rule: IptablesRule; chain: string} | {kind: 'return'} | {kind: 'end'}

interface Ctx {
  table: IptablesTable
  p: FilterPacket
  evidence: string[]
  /** evaluating what an unmodelled rule would do: no evidence, no nested guesses */
  sandbox: boolean
  unknown: Array<{rule: IptablesRule; unmodelled: string[]; would?: Verdict}>
}

function chainOf(table: IptablesTable, name: string): IptablesChain | undefined {
  return table.chains.find((c) => c.name === name)
}

function run(ctx: Ctx, chain: IptablesChain, depth: number): Outcome {
  if (depth > MAX_DEPTH) return {kind: 'end'}
  for (const rule of chain.rules) {
    const {result, unmodelled} = matchRule(rule, ctx.p)
    if (result === 'no') continue
    if (result === 'unknown') {
      if (ctx.sandbox) continue
      const would = whatIf(ctx, rule, depth)
      ctx.unknown.push({rule, unmodelled, ...(would ? {would} : {})})
      ctx.evidence.push(`${rule.raw}    (not modelled: ${unmodelled.join('; ')}; taken as not matching)`)
      continue
    }
    const target = rule.target ?? ''
    if (TERMINAL.has(target)) {
      if (!ctx.sandbox) ctx.evidence.push(rule.raw)
      return {kind: 'verdict', verdict: target as Verdict, rule, chain: chain.name}
    }
    if (target === 'RETURN') {
      if (!ctx.sandbox) ctx.evidence.push(rule.raw)
      return {kind: 'return'}
    }
    if (target === 'MARK') {
      const next = applyMark(rule.targetArgs ?? [], ctx.p.mark)
      if (next !== undefined) ctx.p = {...ctx.p, mark: next}
      continue
    }
    const sub = chainOf(ctx.table, target)
    if (!sub) continue // LOG, CONNMARK, ...: non-terminating targets
    if (!ctx.sandbox) ctx.evidence.push(rule.raw)
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
  const sandbox: Ctx = {...ctx, evidence: [], sandbox: true, unknown: []}
  const out = run(sandbox, sub, depth + 1)
  return out.kind === 'verdict' ? out.verdict : undefined
}

const accepts = (v: Verdict): boolean => v === 'ACCEPT'

/**
 * Walk `chain` of the filter table. undefined when the ruleset has no filter
 * table or no such chain: then nothing filters there.
 */
export function evaluateChain(ipt: Iptables, chainName: string, p: FilterPacket, tableName = 'filter'): FilterResult | undefined {
  const table = ipt.tables.find((t) => t.name === tableName)
  const chain = table ? chainOf(table, chainName) : undefined
  if (!table || !chain) return undefined
  const ctx: Ctx = {table, p: {...p}, evidence: [], sandbox: false, unknown: []}
  const out = run(ctx, chain, 0)
  let result: FilterResult
  if (out.kind === 'verdict') {
    result = {verdict: out.verdict, rule: out.rule, chain: out.chain, evidence: ctx.evidence, uncertain: []}
  } else {
    const policy = (chain.policy ?? 'ACCEPT').toUpperCase()
    const verdict: Verdict = policy === 'DROP' || policy === 'REJECT' ? 'DROP' : 'ACCEPT'
    ctx.evidence.push(`-P ${chain.name} ${policy}`)
    result = {verdict, chain: chain.name, evidence: ctx.evidence, uncertain: []}
  }
  result.uncertain = ctx.unknown.filter((u) => u.would !== undefined && accepts(u.would) !== accepts(result.verdict)).map(({rule, unmodelled}) => ({rule, unmodelled}))
  return result
}

/** A chain with no rules and an ACCEPT policy decides nothing worth showing. */
export function chainIsEmpty(ipt: Iptables, chainName: string, tableName = 'filter'): boolean {
  const chain = ipt.tables.find((t) => t.name === tableName)?.chains.find((c) => c.name === chainName)
  return !chain || (chain.rules.length === 0 && (chain.policy ?? 'ACCEPT').toUpperCase() === 'ACCEPT')
}
