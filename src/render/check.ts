/**
 * `netctl check`: the result as JSON (schemas/check.schema.json) and as text
 * (a header, then the findings, errors first).
 */
import type {CheckResult} from '../services/check-result.js'
import {printable} from '../util/text.js'
import {findingsText} from './finding.js'
import {terminalWidth, wrapLine} from './width.js'

export function checkJson(r: CheckResult): CheckResult {
  return r
}

export function checkText(r: CheckResult, allNodes: number): string {
  const scope =
    r.nodes.length === allNodes
      ? `${allNodes} node${allNodes === 1 ? '' : 's'}`
      : `${r.nodes.join(', ')} (of ${allNodes} nodes)`
  const missing = allNodes - r.collected
  const head = printable(
    `checked ${scope} of ${r.cluster.name} (${r.cluster.backend})${missing > 0 ? `; ${missing} not collected` : ''}`,
  )
  return `${wrapLine(head, terminalWidth())}\n\n${findingsText(r.findings)}`
}
