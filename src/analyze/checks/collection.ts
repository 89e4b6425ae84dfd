/**
 * Collection checks: what the snapshot itself says it could not read.
 */
import {type NodeState, podNotRead, type SectionCause, type SectionResult} from '../../model/node-state.js'
import {partialFix} from '../catalogue/collection.js'
import {type Check, raise} from './raise.js'

/** The causes recorded on a node's failed sections, its pods' included. */
function causesOf(state: NodeState | undefined): SectionCause[] {
  if (!state) return []
  const all: SectionResult[] = [
    ...Object.values(state.sections),
    ...state.pods.flatMap((p) => Object.values(p.sections ?? {})),
  ]
  return all.flatMap((s) => (s.status !== 'ok' && s.status !== 'absent' && s.cause ? [s.cause] : []))
}

/** The snapshot's collection errors (NODE_UNREACHABLE, COLLECTION_PARTIAL), then the pods that could not be read. */
export const collectionErrors: Check = (ctx) => [...snapshotErrors(ctx), ...podsNotRead(ctx)]

const snapshotErrors: Check = (ctx) =>
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

/**
 * Pods whose namespace the probe never found or entered (no crictl on the
 * node, the sandbox gone): their state is unknown, and a trace from or to them
 * ends in INSUFFICIENT_INFO. One finding per node, listing every such pod.
 */
const podsNotRead: Check = (ctx) =>
  ctx.collected().flatMap(({node, state}) => {
    const unread = state.pods.flatMap((pod) => {
      const why = podNotRead(pod)
      return why ? [{pod, why}] : []
    })
    if (unread.length === 0) return []
    const first = unread[0]!
    const label = (p: {namespace: string; name: string}): string => `${p.namespace}/${p.name}`
    return [
      raise('COLLECTION_PARTIAL', {
        node: node.name,
        subject: unread.length === 1 ? `pod ${label(first.pod)}` : `${unread.length} pods`,
        message: `${unread.length === 1 ? `the state of pod ${label(first.pod)}` : `the state of ${unread.length} pods`} on ${node.name} could not be read (${first.why.message ?? `${first.why.section} ${first.why.status}`}): traces from or to ${unread.length === 1 ? 'it' : 'them'} end in INSUFFICIENT_INFO`,
        evidence: unread.map(
          ({pod, why}) => `${label(pod)}: ${why.section} ${why.status}${why.message ? `: ${why.message}` : ''}`,
        ),
        vars: {node: node.name},
        fixTemplate: /crictl/.test(first.why.message ?? '')
          ? "# install crictl on <node>: netctl finds a pod known only by name (from the Kubernetes API) in the container runtime with it\n# or give each pod's netns (or pid) in an inventory file (docs/inventory.md) and collect with --inventory"
          : "# give each pod's netns (or pid) in an inventory file (docs/inventory.md), or see why <node> could not enter it (the evidence says)",
      }),
    ]
  })
