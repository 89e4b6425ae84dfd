/**
 * Collection checks: what the snapshot itself says it could not read.
 */
import {type Check, raise} from './raise.js'

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
    return raise('COLLECTION_PARTIAL', {
      node: e.node,
      subject: e.node,
      message: `${e.node} was collected only in part: checks that need the missing sections skipped it`,
      evidence: [e.message],
      vars: {},
    })
  })
