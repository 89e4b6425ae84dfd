/**
 * `netctl explain`: a finding code or a disposition looked up in the
 * catalogue, or the whole list. Pure: what it finds goes to the renderer.
 */
import {type Lookup, lookupCode, suggestCode} from '../analyze/catalogue/index.js'
import {UsageError} from '../errors.js'

/** What explain shows: every code and disposition, or the one asked about. */
export type ExplainAnswer = {kind: 'list'} | {kind: 'one'; found: Lookup}

/** The code asked about (case-insensitive), or with `list` all of them; an unknown code is a usage error with a guess. */
export function runExplain(req: {code?: string | undefined; list: boolean}): ExplainAnswer {
  if (req.list) return {kind: 'list'}
  if (req.code === undefined)
    throw new UsageError('give a finding code or a disposition (netctl explain --list shows them all)')
  const found = lookupCode(req.code)
  if (!found) {
    const guess = suggestCode(req.code)
    throw new UsageError(`unknown code '${req.code}'${guess ? `: did you mean ${guess}?` : ''} (netctl explain --list)`)
  }
  return {kind: 'one', found}
}
