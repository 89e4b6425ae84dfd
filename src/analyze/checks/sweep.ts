/**
 * A cluster sweep: every check over the whole snapshot, grouped for
 * commands that report a cluster at once (check, and later an incident
 * sweep or a snapshot diff).
 */
import type {Finding, FindingCode, Severity} from '../../model/finding.js'
import type {Snapshot} from '../../model/snapshot.js'
import {runChecks} from './run.js'

export interface SweepCounts {
  error: number
  warning: number
  info: number
  total: number
  byCode: Partial<Record<FindingCode, number>>
}

export interface Sweep {
  findings: Finding[]
  /** every node of the snapshot → the findings on it (an empty list: nothing found there) */
  byNode: Record<string, Finding[]>
  /** findings about the cluster as a whole (no single node: duplicate podCIDRs, mesh size, RR cluster IDs) */
  cluster: Finding[]
  counts: SweepCounts
}

export function countFindings(findings: readonly Finding[]): SweepCounts {
  const counts: SweepCounts = {error: 0, warning: 0, info: 0, total: findings.length, byCode: {}}
  for (const f of findings) {
    counts[f.severity satisfies Severity] += 1
    counts.byCode[f.code] = (counts.byCode[f.code] ?? 0) + 1
  }
  return counts
}

export function sweep(snapshot: Snapshot): Sweep {
  const findings = runChecks(snapshot)
  const byNode: Record<string, Finding[]> = Object.fromEntries(snapshot.nodes.map((n) => [n.name, []]))
  const cluster: Finding[] = []
  for (const f of findings) {
    if (f.node === undefined) cluster.push(f)
    else (byNode[f.node] ??= []).push(f)
  }
  return {findings, byNode, cluster, counts: countFindings(findings)}
}
