import type {Snapshot} from '../../model/snapshot.js'
import {ownedState} from './current.js'
import {desiredNode} from './desired.js'
import {diffIsEmpty, diffLines, diffNode, type NodeDiff} from './diff.js'
import {type NodeOps, nodeOps} from './ops.js'
import {backendInfo} from './profiles.js'
import type {BackendType, ClusterFacts, ConfiguredBackend, Daemon, Kind, NodeDesired} from './types.js'

/**
 * What `backend set TYPE` would do: per node, the kernel lines added and
 * removed and the daemons stopped, started or reconfigured; and what happens
 * to MTUs. Pure: computed from a snapshot and the node facts.
 *
 * src/backend/plan/ holds everything of a switch that needs no cluster
 * (desired state, diff, ops, preflight rules, the Kubernetes change): a
 * what-if (a plan's ops applied to a snapshot, then traced) belongs here too.
 * What reaches nodes or the API is in src/backend/act/.
 */

export interface NodePlan {
  node: string
  /** false when the node was not collected (nothing is known, nothing can be planned) */
  collected: boolean
  current?: NodeDesired
  desired: NodeDesired
  diff?: NodeDiff
  lines?: Record<Kind, {add: string[]; remove: string[]}>
  /** the commands that make the diff so, in the order they run */
  ops?: NodeOps
  daemons: {start: Daemon[]; stop: Daemon[]; reconfigure: Daemon[]}
  changes: number
}

export interface PodMTU {
  pod: string
  node: string
  mtu: number
}

export interface MtuImpact {
  underlay: number
  from: {backend: ConfiguredBackend; tunnel?: number; pod: number}
  to: {backend: BackendType; tunnel?: number; pod: number}
  /** pods whose eth0 is larger than the new backend carries: they need PMTU discovery until recreated */
  podsAbove: PodMTU[]
  /** pods smaller than they could be: they work, below the new MTU, until recreated */
  podsBelow: PodMTU[]
  notes: string[]
}

export interface BackendPlan {
  cluster: {name: string; source: Snapshot['cluster']['source']}
  from: ConfiguredBackend
  to: BackendType
  /** nothing to do: configured already and every node holds exactly the target state */
  noop: boolean
  nodes: NodePlan[]
  mtu: MtuImpact
}

export function podMTU(b: ConfiguredBackend, underlay: number): number {
  return underlay - backendInfo(b).overhead
}

function mtuImpact(snapshot: Snapshot, facts: ClusterFacts, from: ConfiguredBackend, to: BackendType): MtuImpact {
  const u = facts.underlayMTU
  const want = podMTU(to, u)
  const pods: PodMTU[] = []
  for (const [node, state] of Object.entries(snapshot.nodeStates)) {
    for (const p of state.pods) {
      const eth0 = p.links.find((l) => l.name === 'eth0')
      if (eth0) pods.push({pod: `${p.namespace}/${p.name}`, node, mtu: eth0.mtu})
    }
  }
  const side = (b: ConfiguredBackend) => ({
    pod: podMTU(b, u),
    ...(backendInfo(b).encap !== 'none' ? {tunnel: podMTU(b, u)} : {}),
  })
  const podsAbove = pods.filter((p) => p.mtu > want)
  const podsBelow = pods.filter((p) => p.mtu < want)
  const notes: string[] = []
  if (podsAbove.length > 0) {
    notes.push(
      `${podsAbove.length} pod interface(s) have MTU ${[...new Set(podsAbove.map((p) => p.mtu))].join('/')} > ${want}, what ${to} carries: ` +
        'packets larger than that need PMTU discovery (ICMP frag-needed) until the pods are recreated (MTU_EXCEEDS_ENCAP)',
    )
  }
  if (podsBelow.length > 0) {
    notes.push(
      `${podsBelow.length} pod interface(s) keep MTU ${[...new Set(podsBelow.map((p) => p.mtu))].join('/')} < ${want}: they work, ${want - Math.max(...podsBelow.map((p) => p.mtu))}+ bytes short, until recreated`,
    )
  }
  notes.push(
    `pods keep their MTU until recreated (as on a real cluster); new pods get ${want} (subnet.env / CNI config)`,
  )
  return {
    underlay: u,
    from: {backend: from, ...side(from)},
    to: {backend: to, ...side(to)},
    podsAbove,
    podsBelow,
    notes,
  }
}

export function planSwitch(
  snapshot: Snapshot,
  facts: ClusterFacts,
  from: ConfiguredBackend,
  to: BackendType,
): BackendPlan {
  const nodes: NodePlan[] = facts.nodes.map((n) => {
    const desired = desiredNode(to, facts, n)
    const state = snapshot.nodeStates[n.name]
    if (!state)
      return {node: n.name, collected: false, desired, daemons: {start: [], stop: [], reconfigure: []}, changes: 0}
    const current = ownedState(state, facts)
    const diff = diffNode(current, desired)
    // BIRD stays when both sides are Calico, but its kernel export follows the backend
    const reconfigure = diff.daemons.keep.filter((d) => d === 'bird' && from !== to)
    const lines = diffLines(diff)
    const changes =
      Object.values(lines).reduce((s, l) => s + l.add.length + l.remove.length, 0) +
      diff.daemons.start.length +
      diff.daemons.stop.length +
      reconfigure.length
    const ops = nodeOps(diff, reconfigure)
    return {
      node: n.name,
      collected: true,
      current,
      desired,
      diff,
      lines,
      ops,
      daemons: {start: diff.daemons.start, stop: diff.daemons.stop, reconfigure},
      changes,
    }
  })
  const noop = from === to && nodes.every((n) => n.collected && n.diff !== undefined && diffIsEmpty(n.diff))
  return {
    cluster: {name: snapshot.cluster.name, source: snapshot.cluster.source},
    from,
    to,
    noop,
    nodes,
    mtu: mtuImpact(snapshot, facts, from, to),
  }
}
