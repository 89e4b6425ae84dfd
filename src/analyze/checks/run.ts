/**
 * The checks: findings about node state beyond a single packet's path, each
 * one small and named after its finding code. Pure: a snapshot in, findings
 * out, in a stable order (the registry's order, then node order).
 */
import type {Finding, FindingCode} from '../../model/finding.js'
import type {NodeState} from '../../model/node-state.js'
import type {Snapshot} from '../../model/snapshot.js'
import type {FactsMaker} from '../../model/snapshot-file.js'
import {
  bridgeAddrMismatch,
  nodeIpMismatch,
  podcidrDuplicate,
  podcidrMissing,
  podcidrOutsideNetwork,
  podcidrOverlap,
  subnetEnvMismatch,
} from './addressing.js'
import {detectBackend, modeFromName} from './backend.js'
import {
  bgpAsMismatch,
  bgpMeshTooLarge,
  bgpPeerUnknown,
  bgpRouteNotInstalled,
  bgpSessionDown,
  rrClusterIdConflict,
} from './bgp.js'
import {cniConfigConflict, cniPluginMissing} from './cni.js'
import {collectionErrors} from './collection.js'
import {CheckContext, type NodeValues} from './context.js'
import {clusterFacts} from './facts.js'
import {encapPortBlocked, firewallDrop, forwardPolicyDrop, iptablesBackendSplit} from './firewall.js'
import {brNetfilterOff, ipForwardDisabled, linkDownCheck, rpFilterAsymmetric} from './host.js'
import {mtuExceedsEncap, mtuMismatch} from './mtu.js'
import {
  tunnelDeviceDown,
  tunnelDeviceMissing,
  udpDaemonDown,
  vniMismatch,
  vxlanCsumOffload,
  vxlanPortMismatch,
} from './overlay-device.js'
import {
  fdbMissing,
  fdbStale,
  neighMissing,
  neighNotPermanent,
  vtepMacMismatch,
  vtepMacMismatchCluster,
  vtepMacMismatchPerPeer,
} from './overlay-peers.js'
import {policyIsolated, policyUnenforced} from './policy.js'
import {policyNotProgrammed, policyStaleRules} from './policy-dataplane.js'
import type {Check, Raised} from './raise.js'
import {blackholeRoute, hostgwNotL2Adjacent, routeMissing, routeStale, routeWrongNexthop} from './routing.js'
import {
  conntrackStaleCheck,
  conntrackTableFull,
  hairpinOffCheck,
  kubeProxyMissing,
  serviceNoEndpoints,
  serviceRulesStale,
} from './services.js'

/**
 * A check of the registry. `check` is the whole of it. For a streamed run (runChecksStreamed),
 * `perNode` is the part that reads a node's routes, neighbours or FDB (dropped from the cluster
 * facts), run node by node, and `cluster` what remains of the check, run once over the facts; a
 * check with neither reads nothing the facts drop and runs once over them.
 */
export interface CheckEntry {
  code: FindingCode
  check: Check
  perNode?: Check
  cluster?: Check
}

/** Every check, by the code it raises, in docs/design.md's catalogue order. */
export const CHECKS: readonly CheckEntry[] = [
  {code: 'NODE_UNREACHABLE', check: collectionErrors},
  {code: 'TUNNEL_DEVICE_MISSING', check: tunnelDeviceMissing},
  {code: 'TUNNEL_DEVICE_DOWN', check: tunnelDeviceDown},
  {code: 'UDP_DAEMON_DOWN', check: udpDaemonDown, perNode: udpDaemonDown},
  {code: 'FDB_MISSING', check: fdbMissing, perNode: fdbMissing},
  {code: 'FDB_STALE', check: fdbStale, perNode: fdbStale},
  {code: 'NEIGH_MISSING', check: neighMissing, perNode: neighMissing},
  {code: 'NEIGH_NOT_PERMANENT', check: neighNotPermanent, perNode: neighNotPermanent},
  {
    code: 'VTEP_MAC_MISMATCH',
    check: vtepMacMismatch,
    cluster: vtepMacMismatchCluster,
    perNode: vtepMacMismatchPerPeer,
  },
  {code: 'VXLAN_PORT_MISMATCH', check: vxlanPortMismatch},
  {code: 'VNI_MISMATCH', check: vniMismatch},
  {code: 'ENCAP_PORT_BLOCKED', check: encapPortBlocked},
  {code: 'VXLAN_CSUM_OFFLOAD', check: vxlanCsumOffload},
  {code: 'MTU_MISMATCH', check: mtuMismatch},
  {code: 'MTU_EXCEEDS_ENCAP', check: mtuExceedsEncap},
  {code: 'IP_FORWARD_DISABLED', check: ipForwardDisabled},
  {code: 'FORWARD_POLICY_DROP', check: forwardPolicyDrop},
  {code: 'FIREWALL_DROP', check: firewallDrop},
  {code: 'RP_FILTER_ASYMMETRIC', check: rpFilterAsymmetric, perNode: rpFilterAsymmetric},
  {code: 'BR_NETFILTER_OFF', check: brNetfilterOff},
  {code: 'IPTABLES_BACKEND_SPLIT', check: iptablesBackendSplit},
  {code: 'LINK_DOWN', check: linkDownCheck},
  {code: 'ROUTE_MISSING', check: routeMissing, perNode: routeMissing},
  {code: 'ROUTE_STALE', check: routeStale, perNode: routeStale},
  {code: 'ROUTE_WRONG_NEXTHOP', check: routeWrongNexthop, perNode: routeWrongNexthop},
  {code: 'BLACKHOLE_ROUTE', check: blackholeRoute, perNode: blackholeRoute},
  {code: 'HOSTGW_NOT_L2_ADJACENT', check: hostgwNotL2Adjacent, perNode: hostgwNotL2Adjacent},
  {code: 'BGP_SESSION_DOWN', check: bgpSessionDown},
  {code: 'BGP_AS_MISMATCH', check: bgpAsMismatch},
  {code: 'BGP_ROUTE_NOT_INSTALLED', check: bgpRouteNotInstalled, perNode: bgpRouteNotInstalled},
  {code: 'BGP_MESH_TOO_LARGE', check: bgpMeshTooLarge},
  {code: 'RR_CLUSTER_ID_CONFLICT', check: rrClusterIdConflict},
  {code: 'BGP_PEER_UNKNOWN', check: bgpPeerUnknown},
  {code: 'PODCIDR_MISSING', check: podcidrMissing},
  {code: 'PODCIDR_DUPLICATE', check: podcidrDuplicate},
  {code: 'PODCIDR_OVERLAP', check: podcidrOverlap},
  {code: 'PODCIDR_OUTSIDE_NETWORK', check: podcidrOutsideNetwork},
  {code: 'SUBNET_ENV_MISMATCH', check: subnetEnvMismatch},
  {code: 'BRIDGE_ADDR_MISMATCH', check: bridgeAddrMismatch},
  {code: 'NODE_IP_MISMATCH', check: nodeIpMismatch},
  {code: 'CNI_CONFIG_CONFLICT', check: cniConfigConflict},
  {code: 'CNI_PLUGIN_MISSING', check: cniPluginMissing},
  {code: 'POLICY_DENY', check: policyIsolated},
  {code: 'POLICY_UNENFORCED', check: policyUnenforced},
  {code: 'POLICY_NOT_PROGRAMMED', check: policyNotProgrammed},
  {code: 'POLICY_STALE_RULES', check: policyStaleRules},
  {code: 'SERVICE_NO_ENDPOINTS', check: serviceNoEndpoints},
  {code: 'SERVICE_RULES_STALE', check: serviceRulesStale},
  {code: 'CONNTRACK_STALE', check: conntrackStaleCheck},
  {code: 'CONNTRACK_TABLE_FULL', check: conntrackTableFull},
  {code: 'HAIRPIN_OFF', check: hairpinOffCheck},
  {code: 'KUBE_PROXY_MISSING', check: kubeProxyMissing},
]

export interface CheckOptions {
  /**
   * Keep only findings about these nodes: a finding on one of them, or a
   * cluster-wide finding that names one of them (trace reports the checks
   * that touch the nodes on its path).
   */
  nodes?: readonly string[]
  /** with `nodes`: also keep the findings about no node whose subject is one of these (a traced Service: `Service ns/name`) */
  subjects?: readonly string[]
  /**
   * runChecksWithFacts: the per-node values (addresses, pod subnets, VTEPs) of an earlier run over
   * the same head and the same facts, filled by this one (trace: the trace service's kept file)
   */
  values?: NodeValues
}

/** Every check, with the nodes each finding is about. */
export function runChecksRaised(snapshot: Snapshot, opts: CheckOptions = {}): Raised[] {
  if (!opts.nodes) {
    const ctx = new CheckContext(snapshot)
    return CHECKS.flatMap(({check}) => check(ctx))
  }
  const wanted = new Set(opts.nodes)
  // the per-node checks look only at the wanted nodes; the filter below still drops what concerns none of them
  const ctx = new CheckContext(snapshot, wanted)
  return aboutWanted(
    CHECKS.flatMap(({check}) => check(ctx)),
    wanted,
    opts.subjects,
  )
}

export function runChecks(snapshot: Snapshot, opts: CheckOptions = {}): Finding[] {
  return runChecksRaised(snapshot, opts).map((r) => r.finding)
}

/** One collected node's state, as a snapshot file holds it (version 2: a line each). */
export interface NodeStateEntry {
  node: string
  state: NodeState
}

/** Every collected node's state, once per call, in any order (a file read again for each pass). */
export type NodeStateSource = () => Iterable<NodeStateEntry> | AsyncIterable<NodeStateEntry>

export interface StreamedChecks {
  raised: Raised[]
  /** the snapshot with each node's cluster facts for its state (facts.ts) */
  facts: Snapshot
  /** how many whole node states the run visited, one at a time */
  visits: number
}

/**
 * The checks over a snapshot read node by node, with the same findings in the same order as
 * runChecksRaised over the whole snapshot, holding one node's whole state at a time. Pass 1 keeps
 * each node's cluster facts (facts.ts: what other nodes' checks read of it, constant in the
 * cluster's size); the checks that read no more than the facts run once over them; pass 2 visits
 * each node's whole state for the checks that read its routes, neighbours and FDB (`perNode`),
 * and drops it. The findings are put back in the registry's order, then the nodes' order.
 */
export async function runChecksStreamed(
  head: Snapshot,
  states: NodeStateSource,
  opts: CheckOptions = {},
): Promise<StreamedChecks> {
  const run = new ChecksByNode(head, opts)
  for await (const {node, state} of states()) run.addFacts(node, state)
  run.start()
  for await (const {node, state} of states()) run.visit(node, state)
  return run.finish()
}

/** runChecksStreamed over a snapshot in memory (the tests compare it with runChecksRaised). */
export function runChecksByNode(snapshot: Snapshot, opts: CheckOptions = {}): StreamedChecks {
  const run = new ChecksByNode(snapshot, opts)
  const states = Object.entries(snapshot.nodeStates)
  for (const [node, state] of states) run.addFacts(node, state)
  run.start()
  for (const [node, state] of states) run.visit(node, state)
  return run.finish()
}

/** One line of a snapshot file that holds its nodes' facts: a node's facts, or its whole state. */
export interface NodeLineEntry extends NodeStateEntry {
  facts: boolean
}

/**
 * runChecksStreamed in one pass, over a file whose nodes' cluster facts were written before their
 * states (facts made by factsMakerFor with the same key): the facts first, kept; then each state,
 * visited once and dropped. Every line is read and parsed once.
 */
export async function runChecksOnePass(
  head: Snapshot,
  lines: () => Iterable<NodeLineEntry> | AsyncIterable<NodeLineEntry>,
  opts: CheckOptions = {},
): Promise<StreamedChecks> {
  const run = new ChecksByNode(head, opts)
  let started = false
  for await (const {node, state, facts} of lines()) {
    if (facts) run.addFacts(node, state, true)
    else {
      if (!started) run.start()
      started = true
      run.visit(node, state)
    }
  }
  if (!started) run.start()
  return run.finish()
}

/**
 * What facts.ts keeps: bumped whenever it keeps something else, so that facts written by another
 * netctl are not trusted (the file is then read twice, its facts made again).
 */
export const FACTS_VERSION = 1

/** A writer's facts (collect, bench/synth.ts) and the key a reader compares with its own. */
export function factsMakerFor(cluster: {backend: string; cni?: string | undefined}): FactsMaker {
  // the profile is the named backend's (factsFor reads nothing else of the snapshot then)
  const of = factsFor({cluster, nodes: [], nodeStates: {}} as unknown as Snapshot)
  return {key: `${FACTS_VERSION} ${cluster.backend} ${cluster.cni ?? ''}`, of}
}

/**
 * How a snapshot's node states become cluster facts (facts.ts): by the backend it names; one it
 * does not name is settled by a vote over the states, and then every main route stays a fact.
 */
export function factsFor(head: Snapshot): (state: NodeState) => NodeState {
  const profile = modeFromName(head.cluster.backend) === 'unknown' ? undefined : detectBackend(head)
  return (state) => clusterFacts(state, profile)
}

/**
 * The checks of some nodes (trace: the nodes of its path) from every node's cluster facts, made
 * beforehand with factsFor, and those nodes' whole states: what runChecksRaised finds about them.
 */
export function runChecksWithFacts(
  head: Snapshot,
  facts: Readonly<Record<string, NodeState>>,
  whole: Iterable<NodeStateEntry>,
  opts: CheckOptions = {},
): StreamedChecks {
  const run = new ChecksByNode(head, opts)
  for (const [node, f] of Object.entries(facts)) run.addFacts(node, f, true)
  run.start()
  for (const {node, state} of whole) run.visit(node, state)
  return run.finish()
}

/**
 * What the per-node checks raised at the nodes one share of a run visited (a check worker's nodes:
 * src/services/check-workers.ts), by each node's place in the node list; merged by the run that
 * holds the rest, the findings come out in the order of one run over every node.
 */
export interface VisitedChecks {
  visits: number
  byPlace: Array<[place: number, raised: Raised[][]]>
}

/**
 * The two passes of runChecksStreamed, fed by the caller (from a file, or from memory). A run can
 * be split: each share visits some nodes over the same facts (start without the checks run once)
 * and hands `visited()` to the one that ran them (`merge`), which finishes.
 */
export class ChecksByNode {
  private readonly toFacts
  private readonly byNode = new Map<string, NodeState>()
  private readonly wanted: ReadonlySet<string> | undefined
  /** each node's first place in the node list: the findings' order */
  private readonly place = new Map<string, number>()
  private ctx?: CheckContext
  private facts?: Snapshot
  private once: Raised[][] = []
  /** per visited node (by its place), what each per-node check raised there */
  private readonly perNode = new Map<number, Raised[][]>()
  private visits = 0

  constructor(
    private readonly head: Snapshot,
    private readonly opts: CheckOptions,
  ) {
    this.toFacts = factsFor(head)
    this.wanted = opts.nodes ? new Set(opts.nodes) : undefined
    head.nodes.forEach((n, i) => {
      if (!this.place.has(n.name)) this.place.set(n.name, i)
    })
  }

  /** pass 1: a node's state, of which its cluster facts are kept (or its facts, made already) */
  addFacts(node: string, state: NodeState, made = false): void {
    this.byNode.set(node, made ? state : this.toFacts(state))
  }

  /**
   * between the passes: every check that needs no more than the facts, once (not in a share of the
   * run that only visits nodes: `once: false`)
   */
  start({once = true}: {once?: boolean} = {}): void {
    // in the nodes' order, as a loaded snapshot holds them
    const nodeStates: Record<string, NodeState> = {}
    for (const n of this.head.nodes) if (this.byNode.has(n.name)) nodeStates[n.name] = this.byNode.get(n.name)!
    for (const [name, s] of this.byNode) if (!(name in nodeStates)) nodeStates[name] = s
    this.byNode.clear()
    this.facts = {...this.head, nodeStates}
    this.ctx = new CheckContext(this.facts, this.wanted, this.opts.values)
    this.once = CHECKS.map((e) => (!once || (e.perNode && !e.cluster) ? [] : (e.cluster ?? e.check)(this.ctx!)))
  }

  /** pass 2: a node's whole state, for the per-node checks, dropped after them */
  visit(node: string, state: NodeState): void {
    const at = this.place.get(node)
    // a state no node of the list has is never checked (as in runChecksRaised); one outside --node's scope neither
    if (at === undefined || (this.wanted && !this.wanted.has(node)) || this.perNode.has(at)) return
    this.visits++
    this.ctx!.visit(node, state)
    this.perNode.set(
      at,
      CHECKS.map((e) => (e.perNode ? e.perNode(this.ctx!) : [])),
    )
    this.ctx!.visit(node, undefined)
  }

  /** what this share's visits raised, for the run that finishes (`merge`) */
  visited(): VisitedChecks {
    return {visits: this.visits, byPlace: [...this.perNode]}
  }

  /** another share's visits, as if this run had made them */
  merge(share: VisitedChecks): void {
    this.visits += share.visits
    for (const [at, raised] of share.byPlace) if (!this.perNode.has(at)) this.perNode.set(at, raised)
  }

  finish(): StreamedChecks {
    const visited = [...this.perNode.keys()].sort((a, b) => a - b)
    const all = CHECKS.flatMap((_, i) => [...this.once[i]!, ...visited.flatMap((at) => this.perNode.get(at)![i]!)])
    return {
      raised: this.wanted ? aboutWanted(all, this.wanted, this.opts.subjects) : all,
      facts: this.facts!,
      visits: this.visits,
    }
  }
}

function aboutWanted(all: Raised[], wanted: ReadonlySet<string>, subjects: readonly string[] = []): Raised[] {
  const about = new Set(subjects)
  return all.filter((r) =>
    r.finding.node !== undefined
      ? wanted.has(r.finding.node)
      : r.about.some((n) => wanted.has(n)) || (r.about.length === 0 && about.has(r.finding.subject)),
  )
}
