/**
 * NetworkPolicy selection as Kubernetes defines it: which pods a policy's
 * podSelector picks (in the policy's own namespace), for which directions
 * (policyTypes, defaulted as the API server does), and whether the cluster's
 * CNI enforces policies at all. Pure: the snapshot's policies and pods in.
 */
import type {Snapshot, SnapshotNetworkPolicy, SnapshotPod} from '../model/snapshot.js'

export type PolicyDirection = 'Ingress' | 'Egress'

export interface LabelSelectorRequirement {
  key: string
  operator: string
  values?: string[]
}

export interface LabelSelector {
  matchLabels?: Record<string, string>
  matchExpressions?: LabelSelectorRequirement[]
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

function requirementMatches(req: unknown, labels: Record<string, string>): boolean {
  if (!isRecord(req) || typeof req.key !== 'string' || typeof req.operator !== 'string') return false
  const has = Object.hasOwn(labels, req.key)
  const values = Array.isArray(req.values) ? req.values.filter((v): v is string => typeof v === 'string') : []
  switch (req.operator) {
    case 'In':
      return has && values.includes(labels[req.key]!)
    case 'NotIn':
      // a pod without the key is not in any set of values
      return !has || !values.includes(labels[req.key]!)
    case 'Exists':
      return has
    case 'DoesNotExist':
      return !has
    default:
      // the API server refuses any other operator; a selector it could not parse selects nothing
      return false
  }
}

/**
 * Does a label selector (metav1.LabelSelector) match these labels? Every
 * matchLabels pair and every matchExpressions requirement must hold; the
 * empty selector matches everything.
 */
export function selectorMatches(selector: unknown, labels: Record<string, string> = {}): boolean {
  if (selector === undefined || selector === null) return true
  if (!isRecord(selector)) return false
  const {matchLabels, matchExpressions} = selector
  if (matchLabels !== undefined) {
    if (!isRecord(matchLabels)) return false
    for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false
  }
  if (matchExpressions !== undefined) {
    if (!Array.isArray(matchExpressions)) return false
    if (!matchExpressions.every((r) => requirementMatches(r, labels))) return false
  }
  return true
}

/**
 * The directions a policy applies to. Without policyTypes the API server
 * defaults them: Ingress always, Egress when the policy has egress rules.
 */
export function policyDirections(spec: Record<string, unknown>): PolicyDirection[] {
  const types = Array.isArray(spec.policyTypes)
    ? spec.policyTypes.filter((t): t is PolicyDirection => t === 'Ingress' || t === 'Egress')
    : []
  if (types.length > 0) return [...new Set(types)]
  return Array.isArray(spec.egress) && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress']
}

/** Does the policy select this pod (its namespace, its podSelector)? */
export function policySelects(policy: SnapshotNetworkPolicy, pod: Pick<SnapshotPod, 'namespace' | 'labels'>): boolean {
  return pod.namespace === policy.namespace && selectorMatches(policy.spec.podSelector ?? {}, pod.labels ?? {})
}

/** The pods a policy selects, in the snapshot's order. */
export function selectedPods(policy: SnapshotNetworkPolicy, pods: readonly SnapshotPod[]): SnapshotPod[] {
  return pods.filter((p) => policySelects(policy, p))
}

/** CNIs with a policy engine: Calico's Felix (also Canal's), Weave's weave-npc, Romana's agent. */
const ENFORCING = new Set(['calico', 'canal', 'weave', 'romana'])
const NOT_ENFORCING = new Set(['flannel'])

/**
 * Whether the cluster's CNI enforces NetworkPolicies: true, false, or
 * undefined when the snapshot does not say which CNI runs (the backend alone
 * cannot tell: Canal's dataplane is flannel's).
 */
export function cniEnforcesPolicy(snapshot: Pick<Snapshot, 'cluster'>): boolean | undefined {
  const cni = snapshot.cluster.cni?.toLowerCase()
  if (cni === undefined) return undefined
  if (ENFORCING.has(cni)) return true
  if (NOT_ENFORCING.has(cni)) return false
  return undefined
}

/** "default/web" */
export const policyKey = (p: Pick<SnapshotNetworkPolicy, 'namespace' | 'name'>): string => `${p.namespace}/${p.name}`
