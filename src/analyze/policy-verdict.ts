/**
 * NetworkPolicy verdicts: what networking.k8s.io/v1 NetworkPolicies decide for
 * one packet, in both directions — egress at the source pod, ingress at the
 * destination pod — as the Kubernetes API defines it:
 * - a pod is isolated for a direction when a policy of its namespace selects it
 *   with that direction in its (defaulted) policyTypes; then only what a rule of
 *   one of those policies allows passes (the policies add up, none subtracts);
 * - a rule allows a packet when one of its peers matches the other end (or it
 *   has none) and one of its ports matches (or it has none);
 * - a peer is a podSelector (the policy's namespace), a namespaceSelector (any
 *   pod there), both (the pods of those namespaces that match), or an ipBlock;
 * - a host-network pod or a node is no pod to policies: nothing selects it, and
 *   only an ipBlock matches its address; traffic between a pod and its own node
 *   is always allowed.
 * Pure: the snapshot's policies, pods and namespaces in, the verdict out.
 */
import type {Snapshot, SnapshotNamespace, SnapshotNetworkPolicy, SnapshotPod} from '../model/snapshot.js'
import type {PolicyDirectionVerdict, PolicyRuleRef, PolicyRuling} from '../model/trace.js'
import {cidrContains, parseCidr, parseIp} from './ip.js'
import {type PolicyDirection, policyDirections, policyKey, selectorMatches} from './policy.js'

export type PolicyProtocol = 'TCP' | 'UDP' | 'SCTP'

/** The label every namespace carries since Kubernetes 1.21 (the API server sets it). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name'

/** One end of the packet as policies see it. */
export interface PolicyEnd {
  ip: string
  /** the pod, when the end is one (a host-network pod counts as its node) */
  pod?: SnapshotPod
  /** the node the end runs on (a pod's node, or the node itself) */
  node?: string
}

/** The packet: its ends, its protocol and destination port (ICMP has none). */
export interface PolicyFlow {
  src: PolicyEnd
  dst: PolicyEnd
  protocol: PolicyProtocol | 'ICMP'
  port?: number
}

export type {PolicyRuleRef, PolicyRuling}
/** Why the closest rule did not allow the packet (rule absent: a policy without rules for the direction). */
export type ClosestRule = NonNullable<PolicyDirectionVerdict['closest']>
export type DirectionVerdict = PolicyDirectionVerdict

export interface PolicyVerdict {
  allowed: boolean
  egress: DirectionVerdict
  ingress: DirectionVerdict
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const podName = (p: Pick<SnapshotPod, 'namespace' | 'name'>): string => `${p.namespace}/${p.name}`

/**
 * The snapshot's policies by namespace, and its namespaces' labels: built once
 * per snapshot, so a verdict looks only at the policies of the two pods' namespaces.
 */
export class PolicyIndex {
  private readonly byNamespace = new Map<string, SnapshotNetworkPolicy[]>()
  private readonly nsLabels = new Map<string, Record<string, string>>()

  constructor(policies: readonly SnapshotNetworkPolicy[] = [], namespaces: readonly SnapshotNamespace[] = []) {
    for (const p of policies) {
      const list = this.byNamespace.get(p.namespace)
      if (list) list.push(p)
      else this.byNamespace.set(p.namespace, [p])
    }
    for (const ns of namespaces) this.nsLabels.set(ns.name, ns.labels ?? {})
  }

  static of(snapshot: Pick<Snapshot, 'networkPolicies' | 'namespaces'>): PolicyIndex {
    return new PolicyIndex(snapshot.networkPolicies ?? [], snapshot.namespaces ?? [])
  }

  get size(): number {
    let n = 0
    for (const l of this.byNamespace.values()) n += l.length
    return n
  }

  policiesIn(namespace: string): readonly SnapshotNetworkPolicy[] {
    return this.byNamespace.get(namespace) ?? []
  }

  /** A namespace's labels, with the name label the API server always sets. */
  namespaceLabels(namespace: string): Record<string, string> {
    return {...this.nsLabels.get(namespace), [NAMESPACE_NAME_LABEL]: namespace}
  }

  /** The policies that select a pod for a direction, in the snapshot's order. */
  selecting(pod: SnapshotPod, direction: PolicyDirection): SnapshotNetworkPolicy[] {
    if (pod.hostNetwork) return []
    return this.policiesIn(pod.namespace).filter(
      (p) =>
        policyDirections(p.spec).includes(direction) && selectorMatches(p.spec.podSelector ?? {}, pod.labels ?? {}),
    )
  }
}

/** A pod policies can select and peers can name: not a host-network one. */
const policyPod = (end: PolicyEnd): SnapshotPod | undefined => (end.pod && !end.pod.hostNetwork ? end.pod : undefined)

const selectorText = (s: unknown): string => JSON.stringify(s ?? {})

/** What a peer (from / to entry) fails on for the other end; [] when it matches. */
function peerMismatches(peer: unknown, policyNs: string, other: PolicyEnd, index: PolicyIndex): string[] {
  if (!isRecord(peer)) return ['a peer the API would refuse']
  if (isRecord(peer.ipBlock)) return ipBlockMismatches(peer.ipBlock, other.ip)
  const hasPod = peer.podSelector !== undefined && peer.podSelector !== null
  const hasNs = peer.namespaceSelector !== undefined && peer.namespaceSelector !== null
  if (!hasPod && !hasNs) return ['an empty peer the API would refuse']
  const pod = policyPod(other)
  if (!pod) {
    const what = other.pod
      ? `host-network pod ${podName(other.pod)} (${other.ip}, its node's address)`
      : other.node
        ? `${other.ip} (node ${other.node})`
        : `${other.ip} (no pod)`
    return [`${what} is matched only by an ipBlock, not by ${hasNs ? 'namespaceSelector' : 'podSelector'}`]
  }
  const out: string[] = []
  if (hasNs) {
    const labels = index.namespaceLabels(pod.namespace)
    if (!selectorMatches(peer.namespaceSelector, labels))
      out.push(
        `namespace ${pod.namespace} (labels ${JSON.stringify(labels)}) does not match namespaceSelector ${selectorText(peer.namespaceSelector)}`,
      )
  } else if (pod.namespace !== policyNs) {
    // a podSelector alone names pods of the policy's own namespace
    out.push(
      `pod ${podName(pod)} is not in namespace ${policyNs}, the only one a podSelector without namespaceSelector selects from`,
    )
  }
  if (hasPod && !selectorMatches(peer.podSelector, pod.labels ?? {}))
    out.push(
      `pod ${podName(pod)} (labels ${JSON.stringify(pod.labels ?? {})}) does not match podSelector ${selectorText(peer.podSelector)}`,
    )
  return out
}

function ipBlockMismatches(block: Record<string, unknown>, ipText: string): string[] {
  const ip = parseIp(ipText)
  const cidr = typeof block.cidr === 'string' ? parseCidr(block.cidr) : undefined
  if (!ip || !cidr) return [`ipBlock ${selectorText(block)} cannot be read`]
  if (cidr.ip.family !== ip.family || !cidrContains(cidr, ip)) return [`${ipText} is not in ipBlock ${block.cidr}`]
  for (const ex of asArray(block.except)) {
    const c = typeof ex === 'string' ? parseCidr(ex) : undefined
    if (c && c.ip.family === ip.family && cidrContains(c, ip))
      return [`${ipText} is in ${ex}, an except of ipBlock ${block.cidr}`]
  }
  return []
}

/** A named port resolved against the destination pod's container ports. */
function namedPort(name: string, protocol: string, dst: PolicyEnd): number | undefined {
  const pod = policyPod(dst)
  return pod?.ports?.find((p) => p.name === name && (p.protocol ?? 'TCP') === protocol)?.containerPort
}

/** "80/TCP", "8000-8080/TCP", "http(=8080)/TCP", "all UDP ports" */
function portText(entry: Record<string, unknown>, protocol: string, dst: PolicyEnd): string {
  if (entry.port === undefined || entry.port === null) return `all ${protocol} ports`
  if (typeof entry.port === 'string') {
    const n = namedPort(entry.port, protocol, dst)
    return `${entry.port}(${n === undefined ? 'no such port on the destination pod' : `=${n}`})/${protocol}`
  }
  return `${entry.port}${typeof entry.endPort === 'number' ? `-${entry.endPort}` : ''}/${protocol}`
}

/** What the rule's ports fail on for the packet; [] when one of them matches (or there are none). */
function portMismatches(ports: unknown, flow: PolicyFlow): string[] {
  const list = asArray(ports)
  if (list.length === 0) return []
  const texts: string[] = []
  for (const raw of list) {
    const entry = isRecord(raw) ? raw : {}
    const protocol = typeof entry.protocol === 'string' ? entry.protocol : 'TCP'
    texts.push(portText(entry, protocol, flow.dst))
    if (protocol !== flow.protocol || flow.port === undefined) continue
    if (entry.port === undefined || entry.port === null) return []
    if (typeof entry.port === 'string') {
      if (namedPort(entry.port, protocol, flow.dst) === flow.port) return []
      continue
    }
    if (typeof entry.port !== 'number') continue
    const end = typeof entry.endPort === 'number' ? entry.endPort : entry.port
    if (flow.port >= entry.port && flow.port <= end) return []
  }
  const what = flow.protocol === 'ICMP' ? 'ICMP (no port)' : `port ${flow.port ?? '?'}/${flow.protocol}`
  return [`${what} is not in ports [${texts.join(', ')}]`]
}

/** The rule's mismatches: the best-matching peer's, then the ports'. */
function ruleMismatches(
  rule: unknown,
  direction: PolicyDirection,
  policyNs: string,
  flow: PolicyFlow,
  index: PolicyIndex,
): string[] {
  const r = isRecord(rule) ? rule : {}
  const peers = asArray(direction === 'Ingress' ? r.from : r.to)
  const other = direction === 'Ingress' ? flow.src : flow.dst
  let peerMiss: string[] = []
  if (peers.length > 0) {
    let best: string[] | undefined
    for (const peer of peers) {
      const miss = peerMismatches(peer, policyNs, other, index)
      if (best === undefined || miss.length < best.length) best = miss
      if (miss.length === 0) break
    }
    peerMiss = best ?? []
  }
  return [...peerMiss, ...portMismatches(r.ports, flow)]
}

function ruling(
  policy: SnapshotNetworkPolicy,
  direction: PolicyDirection,
  flow: PolicyFlow,
  index: PolicyIndex,
): PolicyRuling {
  const key = policyKey(policy)
  const rules = asArray(direction === 'Ingress' ? policy.spec.ingress : policy.spec.egress)
  if (rules.length === 0)
    return {
      policy: key,
      allows: false,
      mismatches: [`no ${direction.toLowerCase()} rule: a default deny for the pods it selects`],
    }
  let closest: {rule: number; mismatches: string[]} | undefined
  for (const [i, rule] of rules.entries()) {
    const miss = ruleMismatches(rule, direction, policy.namespace, flow, index)
    if (miss.length === 0) return {policy: key, allows: true, rule: i}
    if (!closest || miss.length < closest.mismatches.length) closest = {rule: i, mismatches: miss}
  }
  return {policy: key, allows: false, ...closest}
}

/** One direction at one pod. */
function decide(direction: PolicyDirection, at: PolicyEnd, flow: PolicyFlow, index: PolicyIndex): DirectionVerdict {
  const pod = policyPod(at)
  if (!pod) return {direction, verdict: 'NOT_APPLICABLE', policies: []}
  const selecting = index.selecting(pod, direction)
  const base = {direction, pod: podName(pod), policies: selecting.map(policyKey)}
  if (selecting.length === 0) return {...base, verdict: 'NOT_ISOLATED'}
  // traffic between a pod and the node it runs on always passes
  const other = direction === 'Ingress' ? flow.src : flow.dst
  if (!policyPod(other) && other.node !== undefined && other.node === pod.node) {
    return {
      ...base,
      verdict: 'ALLOWED',
      reason: `${other.ip} is node ${pod.node}, where ${podName(pod)} runs: traffic between a pod and its own node always passes`,
    }
  }
  const rulings = selecting.map((p) => ruling(p, direction, flow, index))
  const allowing = rulings.find((r) => r.allows)
  if (allowing)
    return {...base, verdict: 'ALLOWED', allowedBy: {policy: allowing.policy, direction, rule: allowing.rule!}, rulings}
  // a rule beats a policy without rules; fewer mismatches beat more; the first wins a tie
  let closest: PolicyRuling | undefined
  for (const r of rulings) {
    if (
      !closest ||
      (closest.rule === undefined && r.rule !== undefined) ||
      (r.rule !== undefined && r.mismatches!.length < closest.mismatches!.length)
    )
      closest = r
  }
  const c = closest!
  return {
    ...base,
    verdict: 'DENIED',
    closest: {
      policy: c.policy,
      direction,
      ...(c.rule === undefined ? {} : {rule: c.rule}),
      mismatches: c.mismatches ?? [],
    },
    rulings,
  }
}

/** The verdict for a packet: egress at its source, ingress at its destination. */
export function policyVerdict(index: PolicyIndex, flow: PolicyFlow): PolicyVerdict {
  const egress = decide('Egress', flow.src, flow, index)
  const ingress = decide('Ingress', flow.dst, flow, index)
  return {allowed: egress.verdict !== 'DENIED' && ingress.verdict !== 'DENIED', egress, ingress}
}

/** "x/allow-b rule ingress[0]" */
export function ruleText(ref: Pick<ClosestRule, 'policy' | 'direction' | 'rule'>): string {
  return ref.rule === undefined ? ref.policy : `${ref.policy} ${ref.direction.toLowerCase()}[${ref.rule}]`
}
