import type {Snapshot} from '../../model/snapshot.js'
import {ownedState} from '../plan/current.js'
import {diffNode} from '../plan/diff.js'
import {type NodeOps, nodeOps} from '../plan/ops.js'
import {backendInfo} from '../plan/profiles.js'
import type {ClusterFacts, ConfiguredBackend} from '../plan/types.js'
import {applyAll, type ApplyOptions, type NodeApplyResult} from './apply.js'
import {type Recollect, verifyRestored, type VerifyResult} from './verify.js'

/**
 * Put every touched node back to its snapshot from before the switch: the
 * reverse diff (what the node holds now → what it held then), applied the
 * same way as a switch, with the old backend's daemons started again (and
 * BIRD given its old config); then re-collected until it matches.
 */

export interface RollbackResult {
  restored: boolean
  nodes: NodeApplyResult[]
  verify: VerifyResult
}

/** The ops that take one node from `now` back to `before`. Pure. */
export function restoreOps(
  before: Snapshot,
  now: Snapshot,
  facts: ClusterFacts,
  node: string,
  from: ConfiguredBackend,
): NodeOps | string {
  const was = before.nodeStates[node]
  const is = now.nodeStates[node]
  if (!was) return `${node}: no snapshot from before the switch`
  if (!is) return `${node}: cannot read it to restore it`
  const want = ownedState(was, facts)
  const diff = diffNode(ownedState(is, facts), want)
  // BIRD may hold the new backend's config: give it the old one back (a no-op when it never changed)
  const reconfigure =
    backendInfo(from).daemons.includes('bird') && diff.daemons.keep.includes('bird') ? (['bird'] as const) : []
  return nodeOps(diff, [...reconfigure])
}

export async function rollback(
  before: Snapshot,
  facts: ClusterFacts,
  from: ConfiguredBackend,
  touched: string[],
  recollect: Recollect,
  apply: Omit<ApplyOptions, 'type' | 'ignoreAbort'>,
  verifyOpts: Parameters<typeof verifyRestored>[4],
): Promise<RollbackResult> {
  const now = await recollect()
  const planned = touched.map((n) => ({node: n, ops: restoreOps(before, now, facts, n, from)}))
  const results: NodeApplyResult[] = planned
    .filter((p): p is {node: string; ops: string} => typeof p.ops === 'string')
    .map((p) => ({node: p.node, touched: true, ok: false, error: p.ops, steps: []}))
  const ops = planned.map((p) => p.ops).filter((o): o is NodeOps => typeof o !== 'string')
  results.push(...(await applyAll(ops, {...apply, type: from, ignoreAbort: true})))
  const verify = await verifyRestored(recollect, before, facts, touched, verifyOpts)
  // restored means the kernel matches the snapshot again; reachability is reported beside it
  return {restored: verify.stateOk, nodes: results, verify}
}
