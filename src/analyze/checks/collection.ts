/**
 * Collection checks: what the snapshot itself says it could not read.
 */
import type {NodeState, SectionCause, SectionResult} from '../../model/node-state.js'
import {partialFix} from '../catalogue/collection.js'
import {type Check, raise} from './raise.js'

/** The causes recorded on a node's failed sections, its pods' included. */
function causesOf(state: NodeState | undefined): SectionCause[] {
  if (!state) return []
  const all: SectionResult[] = [...Object.values(state.sections), ...state.pods.flatMap((p) => Object.values(p.sections ?? {}))]
  return all.flatMap((s) => (s.status !== 'ok' && s.status !== 'absent' && s.cause ? [s.cause] : []))
}

export const collectionErrors: Check = (ctx) =>
  ctx.snapshot.errors.map((e) => {
    const node = ctx.node(e.node)
    const nodeIP = node ? node.internalIP : '?'
    if (e.code === 'NODE_UNREACHABLE') {
      return raise('NODE_UNREACHABLE', {
        node: e.node,
        subject: e.node,
        message: `${e.node} could not be collected: every check that needs its state skipped it`,
        evidence: [e.message],
        vars: {node: e.node, nodeIP},
      })
    }
    // the fix of what happened (a BIRD timeout is not a missing tool); the generic one for an older snapshot
    const fix = partialFix(causesOf(ctx.state(e.node)))
    return raise('COLLECTION_PARTIAL', {
      node: e.node,
      subject: e.node,
      message: `${e.node} was collected only in part: checks that need the missing sections skipped it`,
      evidence: [e.message],
      vars: {},
      ...(fix ? {fixTemplate: fix} : {}),
    })
  })
