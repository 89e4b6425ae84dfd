/** `netctl check`'s result (schemas/check.schema.json), built from the snapshot the checks ran on. */
import type {SweepCounts} from '../analyze/checks/index.js'
import type {ProbeMatrix} from '../analyze/probe-matrix.js'
import type {Finding} from '../model/finding.js'
import type {Snapshot} from '../model/snapshot.js'

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
  /** --probe: one real packet per node pair, which pairs carry pod traffic (its findings are among `findings`) */
  probe?: ProbeMatrix
}

export function checkResult(
  s: Snapshot,
  source: CheckResult['source'],
  nodes: string[],
  findings: Finding[],
  counts: SweepCounts,
): CheckResult {
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
