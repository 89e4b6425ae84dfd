/**
 * How a check reports: a finding from the catalogue, plus the nodes it is
 * about (the node it sits on and any peer it names), so runChecks can keep
 * only the findings that touch the nodes a caller asks about.
 */
import type {Finding, FindingCode} from '../../model/finding.js'
import {CATALOGUE, fillTemplate, type FindingInput, fixVarsOf, makeFinding} from '../catalogue/index.js'
import type {CheckContext} from './context.js'

export interface Raised {
  finding: Finding
  /** every node the finding concerns: its own node first, then the peers it names */
  about: string[]
}

export type Check = (ctx: CheckContext) => Raised[]

export interface RaiseInput extends FindingInput {
  /** peers named by the finding besides its node */
  peers?: string[]
  /**
   * Placeholders this finding has no value for: the fix lines that use them
   * are left out (a stale entry that belongs to no node has no peer to point
   * it at), instead of filling a command with a made-up value.
   */
  without?: string[]
  /**
   * A fix in the catalogue's template language for a case the entry's fix
   * does not fit (flannel udp's one route for the whole pod network).
   */
  fixTemplate?: string
}

export function raise(code: FindingCode, input: RaiseInput): Raised {
  const {peers = [], without = [], fixTemplate, ...rest} = input
  let finding: Finding
  if (fixTemplate === undefined && without.length === 0) {
    finding = makeFinding(code, rest)
  } else {
    const template =
      fixTemplate ??
      CATALOGUE[code].fix
        .split('\n')
        .filter((l) => !without.some((p) => l.includes(`<${p}>`)))
        .join('\n')
    // the entry's fields, with the fix filled from the chosen template
    const base = makeFinding(code, {...rest, vars: Object.fromEntries(fixVarsOf(code).map((p) => [p, '']))})
    finding = {...base, fix: fillTemplate(template, rest.vars, `raise(${code})`)}
  }
  const about = [...new Set([...(input.node === undefined ? [] : [input.node]), ...peers])]
  return {finding, about}
}

/**
 * What a check raises over many items (a node's peers: a million pairs at 1,000 nodes), a
 * finding or none per item: one array, where a flatMap would make one per item.
 */
export function raisedOver<T>(items: readonly T[], check: (item: T) => Raised | undefined): Raised[] {
  const out: Raised[] = []
  for (const item of items) {
    const r = check(item)
    if (r) out.push(r)
  }
  return out
}
