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
import type {Hop, Protocol, TracePolicy} from '../../model/trace.js'
import {makeFinding} from '../catalogue/index.js'
import {type Cidr, cidrContains, parseCidr} from '../ip.js'
import {cniEnforcesPolicy, policyDirections, policyKey, selectedPods, selectorMatches} from '../policy.js'
import {
  type DirectionVerdict,
  type PolicyEnd,
  type PolicyFlow,
  PolicyIndex,
  type PolicyVerdict,
  policyVerdict,
  ruleText,
} from '../policy-verdict.js'

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
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
  const types =
    Array.isArray(policy.spec.policyTypes) && policy.spec.policyTypes.length > 0
      ? (policy.spec.policyTypes as string[]).join(', ')
      : `${policyDirections(policy.spec).join(', ')} (defaulted: no policyTypes)`
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
  ip?: string
  pod?: string
  namespace?: string
  node?: string
  netns?: string
}

/** The trace's packet as policies see it. */
export interface FlowPacket {
  protocol: Protocol
  port?: number
}

const PROTOCOL = {tcp: 'TCP', udp: 'UDP', icmp: 'ICMP'} as const

function podOf(snapshot: Snapshot, end: FlowEnd): SnapshotPod | undefined {
  return end.pod === undefined
    ? undefined
    : snapshot.pods.find((p) => p.name === end.pod && p.namespace === end.namespace)
}

function policyEnd(snapshot: Snapshot, end: FlowEnd): PolicyEnd {
  const pod = podOf(snapshot, end)
  return {
    ip: end.ip ?? pod?.ip ?? '',
    ...(pod ? {pod} : {}),
    ...((end.node ?? pod?.node) ? {node: end.node ?? pod?.node} : {}),
  }
}

/** "10.244.1.5 (pod y/a)" */
const endText = (end: PolicyEnd): string =>
  end.pod
    ? `${end.ip} (${end.pod.hostNetwork ? 'host-network ' : ''}pod ${podKey(end.pod)})`
    : end.node
      ? `${end.ip} (node ${end.node})`
      : end.ip

/** "TCP 80", "ICMP" */
const packetText = (flow: PolicyFlow): string =>
  flow.port === undefined ? flow.protocol : `${flow.protocol} ${flow.port}`

/** Evidence lines of one denied direction: each selecting policy's ruling. */
function rulingEvidence(v: DirectionVerdict): string[] {
  return (v.rulings ?? []).flatMap((r) => {
    const where = r.rule === undefined ? r.policy : ruleText({policy: r.policy, direction: v.direction, rule: r.rule})
    return r.allows ? [`${where} allows it`] : (r.mismatches ?? []).map((m) => `${where}: ${m}`)
  })
}

/** What the policies decide for a traced packet, and the findings that says. */
export interface FlowPolicy {
  policy: TracePolicy
  /** the direction the packet is denied in (egress first: it is decided first), when it is and the CNI enforces */
  denied?: DirectionVerdict
  findings: Finding[]
}

/**
 * The NetworkPolicies' answer for a traced packet: the verdict of each
 * direction; POLICY_DENY when an enforcing CNI denies it; on a CNI without a
 * policy engine, POLICY_UNENFORCED for each policy that would decide it, saying
 * what it would do. Undefined when the snapshot holds no policies.
 */
export function policyOnFlow(
  snapshot: Snapshot,
  src: FlowEnd,
  dst: FlowEnd,
  packet: FlowPacket,
  index: PolicyIndex = PolicyIndex.of(snapshot),
): FlowPolicy | undefined {
  if (!snapshot.networkPolicies?.length) return undefined
  const flow: PolicyFlow = {
    src: policyEnd(snapshot, src),
    dst: policyEnd(snapshot, dst),
    protocol: PROTOCOL[packet.protocol],
    ...(packet.protocol !== 'icmp' && packet.port !== undefined ? {port: packet.port} : {}),
  }
  const verdict = policyVerdict(index, flow)
  const enforced = cniEnforcesPolicy(snapshot)
  const policy: TracePolicy = {enforced: enforced ?? null, ...verdict}
  if (enforced === false) return {policy, findings: unenforcedOnFlow(snapshot, flow, verdict)}
  if (enforced !== true || verdict.allowed) return {policy, findings: []}
  const denied = verdict.egress.verdict === 'DENIED' ? verdict.egress : verdict.ingress
  const at = denied.direction === 'Egress' ? flow.src : flow.dst
  const peer = denied.direction === 'Egress' ? flow.dst : flow.src
  const closest = denied.closest!
  const [ns, name] = closest.policy.split('/') as [string, string]
  const finding = makeFinding('POLICY_DENY', {
    ...(at.node ? {node: at.node} : {}),
    subject: `pod ${denied.pod} (${denied.direction})`,
    message: `NetworkPolicy ${denied.policies.join(', ')} select${denied.policies.length === 1 ? 's' : ''} pod ${denied.pod} for ${denied.direction} and no rule allows ${packetText(flow)} ${denied.direction === 'Egress' ? 'to' : 'from'} ${endText(peer)}: closest ${ruleText(closest)}: ${closest.mismatches.join('; ')}`,
    evidence: [
      `${endText(flow.src)} -> ${endText(flow.dst)} ${packetText(flow)}`,
      `${denied.direction} of pod ${denied.pod} (${at.ip}): selected by ${denied.policies.join(', ')}`,
      ...rulingEvidence(denied),
    ],
    vars: {namespace: ns, policy: name, srcIP: flow.src.ip},
  })
  return {policy, denied, findings: [finding]}
}

/** POLICY_UNENFORCED for the policies that would decide this flow, with what they would do. */
function unenforcedOnFlow(snapshot: Snapshot, flow: PolicyFlow, verdict: PolicyVerdict): Finding[] {
  const byKey = new Map(snapshot.networkPolicies!.map((p) => [policyKey(p), p]))
  const out: Finding[] = []
  for (const [v, role, end] of [
    [verdict.egress, 'the source', flow.src],
    [verdict.ingress, 'the destination', flow.dst],
  ] as const) {
    for (const key of v.policies) {
      const policy = byKey.get(key)!
      const ruling = v.rulings?.find((r) => r.policy === key)
      const would =
        v.verdict === 'DENIED'
          ? `; enforced, this flow would be denied by ${v.policies.join(', ')} (closest ${ruleText(v.closest!)}: ${v.closest!.mismatches.join('; ')})`
          : ruling?.allows
            ? `; enforced, its rule ${ruleText({policy: key, direction: v.direction, rule: ruling.rule})} would allow this flow`
            : ''
      out.push(
        makeFinding('POLICY_UNENFORCED', {
          subject: `NetworkPolicy ${key}`,
          message: `NetworkPolicy ${key} selects pod ${v.pod} (${role}) for ${v.direction}, but ${snapshot.cluster.cni} enforces no NetworkPolicy: it does not filter this flow${would}`,
          evidence: [
            ...policyEvidence(snapshot, policy),
            `pod ${v.pod} labels ${JSON.stringify(end.pod?.labels ?? {})}`,
            ...(v.verdict === 'DENIED' ? rulingEvidence(v) : []),
          ],
          vars: {namespace: policy.namespace, policy: policy.name},
        }),
      )
    }
  }
  return out
}

/**
 * The forward hops of a walk the policies deny, cut where Felix drops the
 * packet: egress in the FORWARD hop of the source's node (its cali-fw- chain),
 * ingress in the FORWARD hop of the destination's node (its cali-tw- chain),
 * then a drop hop naming the policies.
 */
export function hopsToPolicyDrop(
  hops: readonly Hop[],
  denied: DirectionVerdict,
  finding: Finding,
  src: FlowEnd,
  dst: FlowEnd,
): Hop[] {
  const node = denied.direction === 'Egress' ? src.node : dst.node
  const onNode = hops.map((h, i) => ({h, i})).filter(({h}) => h.node === node && h.action === 'forward')
  const at = denied.direction === 'Egress' ? onNode[0] : onNode.at(-1)
  // no FORWARD hop (the packet reaches the pod without one): cut before the destination pod's namespace
  const cut =
    at?.i ??
    Math.max(
      0,
      hops.findIndex((h) => h.netns === (denied.direction === 'Egress' ? src : dst).netns && h !== hops[0]),
    )
  const here = at?.h ?? hops[cut - 1]
  const drop: Hop = {
    node: node ?? here?.node ?? '',
    netns: here?.netns ?? '',
    ...(here?.in ? {in: here.in} : {}),
    ...(at?.h.out ? {out: at.h.out} : {}),
    action: 'drop',
    evidence: [
      `NetworkPolicy ${denied.direction.toLowerCase()} of pod ${denied.pod}: ${finding.message}`,
      ...finding.evidence.slice(2),
    ],
    findings: ['POLICY_DENY'],
  }
  return [...hops.slice(0, cut), drop]
}

/** Does an ingress rule let some pod in? Its peers are all ipBlocks outside the pod network when not. */
function ruleAdmitsPods(rule: unknown, clusterCIDR: Cidr | undefined): boolean {
  const from = isRecord(rule) && Array.isArray(rule.from) ? rule.from : []
  if (from.length === 0) return true
  return from.some((peer) => {
    if (!isRecord(peer)) return false
    if (!isRecord(peer.ipBlock)) return true
    const c = typeof peer.ipBlock.cidr === 'string' ? parseCidr(peer.ipBlock.cidr) : undefined
    // an ipBlock that overlaps the pod network lets pods in (their addresses), one outside it does not
    return (
      c !== undefined &&
      clusterCIDR !== undefined &&
      c.ip.family === clusterCIDR.ip.family &&
      (cidrContains(c, clusterCIDR.ip) || cidrContains(clusterCIDR, c.ip))
    )
  })
}

/**
 * The pods of each namespace, and an index of them by label, so that a
 * policy's podSelector is matched against the pods that carry its first
 * matchLabels pair rather than every pod: check stays linear in the cluster.
 */
class PodsByNamespace {
  private readonly pods = new Map<string, SnapshotPod[]>()
  private readonly postings = new Map<string, SnapshotPod[]>()

  constructor(pods: readonly SnapshotPod[]) {
    for (const p of pods) {
      if (p.hostNetwork) continue
      const list = this.pods.get(p.namespace) ?? []
      list.push(p)
      this.pods.set(p.namespace, list)
      for (const [k, v] of Object.entries(p.labels ?? {})) {
        const key = `${p.namespace}\u0000${k}\u0000${v}`
        const posting = this.postings.get(key) ?? []
        posting.push(p)
        this.postings.set(key, posting)
      }
    }
  }

  selected(policy: SnapshotNetworkPolicy): SnapshotPod[] {
    const sel = policy.spec.podSelector
    const first = isRecord(sel) && isRecord(sel.matchLabels) ? Object.entries(sel.matchLabels)[0] : undefined
    const candidates = first
      ? (this.postings.get(`${policy.namespace}\u0000${first[0]}\u0000${String(first[1])}`) ?? [])
      : (this.pods.get(policy.namespace) ?? [])
    return candidates.filter((p) => selectorMatches(sel ?? {}, p.labels ?? {}))
  }
}

/**
 * `netctl check` on a CNI that enforces policies: a default deny (a policy
 * selecting pods for Ingress with no ingress rule) whose pods no policy opens
 * to other pods — every connection another pod makes to them is denied. One
 * warning per such policy, naming its pods (it may be intended: a quarantine).
 */
export const policyIsolated: Check = (ctx) => {
  const policies = ctx.snapshot.networkPolicies ?? []
  if (policies.length === 0 || cniEnforcesPolicy(ctx.snapshot) !== true) return []
  const pods = new PodsByNamespace(ctx.snapshot.pods)
  const clusterCIDR = parseCidr(ctx.snapshot.cluster.clusterCIDR)
  const opened = new Set<SnapshotPod>()
  const denies: Array<{policy: SnapshotNetworkPolicy; pods: SnapshotPod[]}> = []
  for (const policy of policies) {
    if (!policyDirections(policy.spec).includes('Ingress')) continue
    const rules = Array.isArray(policy.spec.ingress) ? policy.spec.ingress : []
    const selected = pods.selected(policy)
    if (rules.length === 0) denies.push({policy, pods: selected})
    else if (rules.some((r) => ruleAdmitsPods(r, clusterCIDR))) for (const p of selected) opened.add(p)
  }
  return denies.flatMap(({policy, pods: selected}) => {
    const isolated = selected.filter((p) => !opened.has(p))
    if (isolated.length === 0) return []
    const names = isolated.map(podKey)
    return [
      raise('POLICY_DENY', {
        severity: 'warning',
        subject: `NetworkPolicy ${policyKey(policy)}`,
        message: `NetworkPolicy ${policyKey(policy)} isolates ${isolated.length} pod${isolated.length === 1 ? '' : 's'} (${shortList(names)}) for Ingress and no policy allows ${isolated.length === 1 ? 'it' : 'them'} ingress from any pod: every connection other pods make to ${isolated.length === 1 ? 'it' : 'them'} is denied`,
        evidence: [
          `networkpolicy ${policyKey(policy)}: podSelector ${JSON.stringify(policy.spec.podSelector ?? {})}, no ingress rule (a default deny)`,
          `no NetworkPolicy selecting ${isolated.length === 1 ? 'it' : 'them'} has an ingress rule that admits pods`,
          `cluster ${ctx.snapshot.cluster.name}: CNI ${ctx.snapshot.cluster.cni}, which enforces NetworkPolicies`,
          `isolated: ${shortList(names, 10)}`,
        ],
        vars: {namespace: policy.namespace, policy: policy.name},
        fixTemplate: [
          '# if other pods should reach the pods <policy> isolates, add a policy whose ingress rule allows them (by podSelector / namespaceSelector and port)',
          'kubectl -n <namespace> get networkpolicy',
          'kubectl -n <namespace> describe networkpolicy <policy>',
        ].join('\n'),
        peers: [...new Set(isolated.map((p) => p.node))],
      }),
    ]
  })
}
