/**
 * POLICY_UNENFORCED: NetworkPolicies that select pods in a cluster whose CNI
 * has no policy engine (plain flannel). `netctl check` reports each such
 * policy once; `netctl trace` reports the ones that would filter the traced
 * flow (the destination pod's for Ingress, the source pod's for Egress).
 * Nothing is said when the snapshot holds no policies (a lab, an inventory)
 * or does not say which CNI runs.
 */
import type {Finding} from '../../model/finding.js'
import type {Snapshot, SnapshotNetworkPolicy, SnapshotPod} from '../../model/snapshot.js'
import {makeFinding} from '../catalogue/index.js'
import {cniEnforcesPolicy, type PolicyDirection, policyDirections, policyKey, policySelects, selectedPods} from '../policy.js'
import {type Check, raise} from './raise.js'

const podKey = (p: Pick<SnapshotPod, 'namespace' | 'name'>): string => `${p.namespace}/${p.name}`

/** "a, b, c and 4 more" */
function shortList(items: string[], max = 3): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`
}

/** The policies that matter, or none when they are enforced or the CNI is not known. */
function unenforced(snapshot: Snapshot): SnapshotNetworkPolicy[] {
  if (!snapshot.networkPolicies?.length) return []
  return cniEnforcesPolicy(snapshot) === false ? snapshot.networkPolicies : []
}

/** The policy as `kubectl get -o yaml` would show the parts that decide what it selects. */
function policyEvidence(snapshot: Snapshot, policy: SnapshotNetworkPolicy): string[] {
  const types = Array.isArray(policy.spec.policyTypes) && policy.spec.policyTypes.length > 0 ? (policy.spec.policyTypes as string[]).join(', ') : `${policyDirections(policy.spec).join(', ')} (defaulted: no policyTypes)`
  return [
    `networkpolicy ${policyKey(policy)}: podSelector ${JSON.stringify(policy.spec.podSelector ?? {})}`,
    `policyTypes: ${types}`,
    `cluster ${snapshot.cluster.name}: CNI ${snapshot.cluster.cni}, which enforces no NetworkPolicy`,
  ]
}

/** `netctl check`: one warning per policy that selects at least one pod. */
export const policyUnenforced: Check = (ctx) =>
  unenforced(ctx.snapshot).flatMap((policy) => {
    const pods = selectedPods(policy, ctx.snapshot.pods)
    if (pods.length === 0) return []
    const names = pods.map(podKey)
    return [
      raise('POLICY_UNENFORCED', {
        subject: `NetworkPolicy ${policyKey(policy)}`,
        message: `NetworkPolicy ${policyKey(policy)} selects ${pods.length} pod${pods.length === 1 ? '' : 's'} (${shortList(names)}) for ${policyDirections(policy.spec).join(' and ')}, but ${ctx.snapshot.cluster.cni} enforces no NetworkPolicy: it has no effect`,
        evidence: [...policyEvidence(ctx.snapshot, policy), `selects: ${shortList(names, 10)}`],
        vars: {namespace: policy.namespace, policy: policy.name},
        // the nodes of the pods it selects, so --node keeps it
        peers: [...new Set(pods.map((p) => p.node))],
      }),
    ]
  })

/** One end of a traced flow, as the walk resolved it. */
export interface FlowEnd {
  pod?: string
  namespace?: string
}

/**
 * `netctl trace`: the policies that select the destination pod for Ingress
 * or the source pod for Egress, which would decide this flow if enforced.
 */
export function unenforcedPoliciesOnFlow(snapshot: Snapshot, src: FlowEnd, dst: FlowEnd): Finding[] {
  const policies = unenforced(snapshot)
  if (policies.length === 0) return []
  const podOf = (end: FlowEnd): SnapshotPod | undefined => (end.pod === undefined ? undefined : snapshot.pods.find((p) => p.name === end.pod && p.namespace === end.namespace))
  const ends: Array<{pod: SnapshotPod | undefined; direction: PolicyDirection; role: string}> = [
    {pod: podOf(src), direction: 'Egress', role: 'the source'},
    {pod: podOf(dst), direction: 'Ingress', role: 'the destination'},
  ]
  const out: Finding[] = []
  for (const {pod, direction, role} of ends) {
    if (!pod) continue
    for (const policy of policies) {
      if (!policyDirections(policy.spec).includes(direction) || !policySelects(policy, pod)) continue
      out.push(
        makeFinding('POLICY_UNENFORCED', {
          subject: `NetworkPolicy ${policyKey(policy)}`,
          message: `NetworkPolicy ${policyKey(policy)} selects pod ${podKey(pod)} (${role}) for ${direction}, but ${snapshot.cluster.cni} enforces no NetworkPolicy: it does not filter this flow`,
          evidence: [...policyEvidence(snapshot, policy), `pod ${podKey(pod)} labels ${JSON.stringify(pod.labels ?? {})}`],
          vars: {namespace: policy.namespace, policy: policy.name},
        }),
      )
    }
  }
  return out
}
