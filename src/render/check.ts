/**
 * `netctl check`: the result as JSON (schemas/check.schema.json) and as text
 * (a header, then the findings, errors first).
 */
import type {SweepCounts} from '../analyze/checks/index.js'
import type {Finding} from '../model/finding.js'
import type {Snapshot} from '../model/snapshot.js'
import {printable} from '../util/text.js'
import {findingsText} from './finding.js'
import {terminalWidth, wrapLine} from './width.js'

export interface CheckResult {
  cluster: {name: string; backend: string; clusterCIDR: string}
  /** where the state came from: collected live from a lab, an inventory or a Kubernetes cluster (its context), or read from a snapshot file */
  source: {kind: 'lab' | 'inventory' | 'kubernetes' | 'snapshot'; name: string}
  /** the nodes the findings were limited to (--node), or every node of the cluster */
  nodes: string[]
  collected: number
  unreachable: number
  findings: Finding[]
  counts: SweepCounts
}

export function checkResult(s: Snapshot, source: CheckResult['source'], nodes: string[], findings: Finding[], counts: SweepCounts): CheckResult {
  return {
    cluster: {name: s.cluster.name, backend: s.cluster.backend, clusterCIDR: s.cluster.clusterCIDR},
    source,
    nodes,
    collected: Object.keys(s.nodeStates).length,
    unreachable: s.errors.filter((e) => e.code === 'NODE_UNREACHABLE').length,
    findings,
    counts,
  }
}

export function checkJson(r: CheckResult): CheckResult {
  return r
}

export function checkText(r: CheckResult, allNodes: number): string {
  const scope = r.nodes.length === allNodes ? `${allNodes} node${allNodes === 1 ? '' : 's'}` : `${r.nodes.join(', ')} (of ${allNodes} nodes)`
  const missing = allNodes - r.collected
  const head = printable(`checked ${scope} of ${r.cluster.name} (${r.cluster.backend})${missing > 0 ? `; ${missing} not collected` : ''}`)
  return `${wrapLine(head, terminalWidth())}\n\n${findingsText(r.findings)}`
}
