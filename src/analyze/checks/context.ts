/**
 * What every check needs to know about the cluster, worked out once from the
 * snapshot: the backend, each node's underlay address, pod subnets and VTEP,
 * its uplink, and which probe sections can be trusted.
 */
import type {Link, NodeState} from '../../model/node-state.js'
import type {Snapshot, SnapshotNode} from '../../model/snapshot.js'
import {remembered} from '../../util/memo.js'
import {
  canonical,
  contains,
  isCanonicalPrefix,
  isIPv4,
  maskOf,
  networkOf,
  parsePrefix,
  type Prefix4,
  stripPrefix,
} from '../ip.js'
import {type BackendProfile, detectBackend} from './backend.js'
import {annotationLine, linkLine} from './evidence.js'
import {prefixKey, StateIndex} from './state-index.js'

export const ANN = {
  flannelBackendData: 'flannel.alpha.coreos.com/backend-data',
  flannelPublicIP: 'flannel.alpha.coreos.com/public-ip',
  calicoIPv4: 'projectcalico.org/IPv4Address',
  calicoAS: 'projectcalico.org/ASNumber',
  calicoVxlanMAC: 'projectcalico.org/VXLANTunnelMACAddr',
  calicoVxlanIP: 'projectcalico.org/IPv4VXLANTunnelAddr',
  calicoRRClusterID: 'projectcalico.org/RouteReflectorClusterID',
} as const

/** A node's VTEP as the cluster announces it (annotation) or, failing that, as its device shows it. */
export interface Vtep {
  ip?: string
  mac?: string
  /** where the MAC comes from, as an evidence line */
  macSource?: string
  /** flannel's backend-data VNI, when it says */
  vni?: number
}

/**
 * What the context works out about every node from the Node objects and their cluster facts alone
 * (names, addresses, pod subnets, VTEPs). A later run over the same head and the same facts (trace:
 * the same file, kept by the trace service) may hand it in again rather than work it out anew.
 */
export class NodeValues {
  readonly ipOwner = new Map<string, string>()
  /** name → node: lookups by name stay O(1) however many nodes (and errors, peers) there are */
  readonly byName = new Map<string, SnapshotNode>()
  /** the snapshot's nodes the two maps above were made from */
  nodes?: readonly SnapshotNode[]
  readonly underlayIP = new Map<string, string>()
  readonly podNets = new Map<string, string[]>()
  readonly vtep = new Map<string, Vtep>()
  /** the memos of SHARED_MEMOS */
  readonly memos = new Map<string, unknown>()
}

/**
 * The memos made from every node's Node object and facts alone, whatever the run's subjects and
 * whatever node it visits: kept in NodeValues with the per-node values.
 */
const SHARED_MEMOS = new Set([
  'expectedRoutePeers',
  'podNetHolders',
  'podNetIndex',
  'podNetOverlaps',
  'vtepMACs',
  'vxlanPeers',
  'holdersByNet',
])

export class CheckContext {
  readonly profile: BackendProfile
  readonly nodes: SnapshotNode[]
  private readonly ipOwner: Map<string, string>
  /** the snapshot's node states by name */
  private readonly states: Map<string, NodeState>
  private readonly byName: Map<string, SnapshotNode>
  /** what is worked out per node once, and shared by every check that asks (by node name) */
  private readonly perNode: {
    underlayIP: Map<string, string>
    podNets: Map<string, string[]>
    vtep: Map<string, Vtep>
    uplink: Map<string, Link | undefined>
    uplinkSubnets: Map<string, string[]>
    uplinkPrefixes: Map<string, Prefix4[]>
  }
  /** per-node values that do not depend on the run's subjects (a later run over the same head and facts may reuse them) */
  private readonly values: NodeValues
  private readonly memos = new Map<string, unknown>()
  /**
   * Values about the examined nodes (peer views, expected routes) and the visited node's index:
   * made afresh with each node a streamed run visits, never emptied in place. A map that lives as
   * long as the run is soon in V8's old generation, and the young collector keeps whatever an old
   * object's slots point at, even once the map is emptied or the key gone from a WeakMap: each
   * visited state was kept through two collections and copied into the old generation (870 MB for
   * a 1,000-node check). A per-visit holder dies young with the state it holds.
   */
  private perVisit: {memos: Map<string, unknown>; index?: StateIndex} = {memos: new Map()}
  private readonly indexes = new WeakMap<NodeState, StateIndex>()
  /**
   * A streamed run's node (checks.ts runChecksStreamed): its whole state, while the snapshot holds
   * every node's cluster facts only (stream.ts clusterFacts). Set, the per-node checks see this node alone.
   */
  private current?: {name: string; state: NodeState}

  /**
   * @param subjects when set, the per-node checks look at these nodes only (trace: the nodes on its
   * path); cluster-wide facts (every node's subnets, VTEPs, the majority MTU) still come from all.
   * @param values the per-node values of an earlier run over the same head and the same facts
   */
  constructor(
    readonly snapshot: Snapshot,
    private readonly subjects?: ReadonlySet<string>,
    values?: NodeValues,
  ) {
    this.profile = detectBackend(snapshot)
    this.nodes = snapshot.nodes
    // asked per peer by most checks, of every node of the cluster: a map's lookup, not an object's by a name that no property has
    this.states = new Map(Object.entries(snapshot.nodeStates))
    // values made over other nodes are not these
    this.values = values && (values.nodes === undefined || values.nodes === this.nodes) ? values : new NodeValues()
    this.ipOwner = this.values.ipOwner
    this.byName = this.values.byName
    this.perNode = {
      underlayIP: this.values.underlayIP,
      podNets: this.values.podNets,
      vtep: this.values.vtep,
      uplink: new Map(),
      uplinkSubnets: new Map(),
      uplinkPrefixes: new Map(),
    }
    if (this.values.nodes === this.nodes) return
    this.values.nodes = this.nodes
    for (const n of this.nodes) {
      if (!this.byName.has(n.name)) this.byName.set(n.name, n)
      this.ownAddresses(n)
    }
  }

  /**
   * The node owns each address it is known by (addressesOf) that no node before it claimed. Once
   * per node of the cluster, in a trace's first moments when V8 has compiled nothing yet: no set,
   * filtered copy or closure made per node (they made the loop four times slower).
   */
  private ownAddresses(n: SnapshotNode): void {
    for (const ip of namedAddresses(n))
      if (typeof ip === 'string' && !this.ipOwner.has(ip) && isIPv4(ip)) this.ipOwner.set(ip, n.name)
  }

  state(node: string): NodeState | undefined {
    return this.current?.name === node ? this.current.state : this.states.get(node)
  }

  /**
   * A streamed run visits a node: the per-node checks now see its whole state, and nothing of
   * the previous one stays (its views, its index).
   */
  visit(node: string, state: NodeState | undefined): void {
    this.current = state ? {name: node, state} : undefined
    this.perVisit = {memos: new Map()}
  }

  /** Nodes whose state was collected, with it (in a streamed run's node phase: the node visited). */
  collected(): Array<{node: SnapshotNode; state: NodeState}> {
    if (this.current) {
      const {name, state} = this.current
      return (this.sameName().get(name) ?? []).map((node) => ({node, state}))
    }
    return this.everyCollected()
  }

  /** Every collected node, whatever node a streamed run visits (cluster-wide groupings). */
  everyCollected(): Array<{node: SnapshotNode; state: NodeState}> {
    // asked by every check: the snapshot's states do not change, so only a visited node makes it differ
    if (!this.current) return this.memo('everyCollected', () => this.everyCollectedOf())
    return this.everyCollectedOf()
  }

  private everyCollectedOf(): Array<{node: SnapshotNode; state: NodeState}> {
    return this.nodes.flatMap((node) => {
      const state = this.state(node.name)
      return state ? [{node, state}] : []
    })
  }

  /** Every collected node this run is scoped to, whatever node a streamed run visits. */
  everyExamined(): Array<{node: SnapshotNode; state: NodeState}> {
    const all = this.everyCollected()
    return this.subjects ? all.filter(({node}) => this.subjects!.has(node.name)) : all
  }

  /** name → every node of that name, in node order (a snapshot may list a name twice) */
  private sameName(): Map<string, SnapshotNode[]> {
    return this.memo('sameName', () => {
      const m = new Map<string, SnapshotNode[]>()
      for (const n of this.nodes) {
        const list = m.get(n.name)
        if (list) list.push(n)
        else m.set(n.name, [n])
      }
      return m
    })
  }

  /**
   * The collected nodes a per-node check raises findings about: every one,
   * or only the subjects this run is scoped to. Only for checks whose findings
   * are about the node they look at (never a majority over the cluster).
   */
  examined(): Array<{node: SnapshotNode; state: NodeState}> {
    const all = this.collected()
    return this.subjects ? all.filter(({node}) => this.subjects!.has(node.name)) : all
  }

  /** Did the probe read this section fully? Checks skip what they cannot trust (COLLECTION_PARTIAL says why). */
  ok(state: NodeState, ...sections: string[]): boolean {
    return sections.every((s) => state.sections[s]?.status === 'ok')
  }

  node(name: string): SnapshotNode | undefined {
    return this.byName.get(name)
  }

  /** Every address the cluster knows a node by: InternalIP, ExternalIP, flannel's public-ip, Calico's IPv4Address. */
  addressesOf(n: SnapshotNode): string[] {
    return [...new Set(namedAddresses(n).filter((x): x is string => typeof x === 'string' && isIPv4(x)))]
  }

  /** The node an underlay address belongs to, if any. */
  ownerOfIP(ip: string): string | undefined {
    return this.ipOwner.get(ip)
  }

  /** The address peers send to: flannel's public-ip, Calico's IPv4Address, else the InternalIP. */
  underlayIP(n: SnapshotNode): string {
    return perNodeValue(this.perNode.underlayIP, n, this, this.underlayIPOf)
  }

  private underlayIPOf(n: SnapshotNode): string {
    const ann = this.profile.family === 'calico' ? n.annotations[ANN.calicoIPv4] : n.annotations[ANN.flannelPublicIP]
    const ip = ann && stripPrefix(ann)
    return ip && isIPv4(ip) ? ip : n.internalIP
  }

  /** The cluster's pod network: flannel's FLANNEL_NETWORK on that node when it has one, else the snapshot's cluster CIDR. */
  network(node?: string): string {
    const env = node ? this.state(node)?.flannelSubnetEnv?.FLANNEL_NETWORK : undefined
    return env && parsePrefix(env) ? canonical(env) : this.snapshot.cluster.clusterCIDR
  }

  /**
   * A node's pod subnets. Calico's IPAM blocks need not be the Node's
   * podCIDR: a node's own blocks are the `blackhole <block>` routes Calico
   * installs for them, so those win when the node was collected.
   */
  podNets(n: SnapshotNode): string[] {
    return perNodeValue(this.perNode.podNets, n, this, this.podNetsOf)
  }

  private podNetsOf(n: SnapshotNode): string[] {
    if (this.profile.family === 'calico') {
      const s = this.state(n.name)
      const blocks = (s ? this.index(s).mainRoutes : [])
        .filter((r) => r.type === 'blackhole' && (r.protocol === 'bird' || r.protocol === '80'))
        .map((r) => r.dst)
        .filter((d) => contains(this.snapshot.cluster.clusterCIDR, d))
      if (blocks.length > 0) return blocks
    }
    // a loop, and the text itself when it is canonical already (a Node's podCIDR is): asked once per node of the cluster
    const nets: string[] = []
    for (const c of n.podCIDRs) {
      const p = parsePrefix(c)
      if (p) nets.push(isCanonicalPrefix(c, p) ? c : canonical(c))
    }
    return nets
  }

  /** Every other node. */
  peers(of: string): SnapshotNode[] {
    return this.nodes.filter((n) => n.name !== of)
  }

  /**
   * The Node objects a check raises findings on when each finding sits on the node it looks at
   * (a podCIDR outside the network): every node, or only the subjects this run is scoped to.
   */
  scopedNodes(): SnapshotNode[] {
    const subjects = this.subjects
    return subjects ? this.memo('scopedNodes', () => this.nodes.filter((n) => subjects.has(n.name))) : this.nodes
  }

  link(state: NodeState, name: string): Link | undefined {
    return this.index(state).link(name)
  }

  /** The interface that holds the node's underlay address (its uplink). */
  uplink(n: SnapshotNode, state: NodeState): Link | undefined {
    if (this.state(n.name) !== state) return this.uplinkOf(n, state)
    // once per node: nativeRoutes and uplinkTest ask it before their loop over the peers
    return remembered(this.perNode.uplink, n.name, Infinity, () => this.uplinkOf(n, state))
  }

  private uplinkOf(n: SnapshotNode, state: NodeState): Link | undefined {
    const ips = new Set([this.underlayIP(n), n.internalIP])
    const addr = state.addresses.find((a) => a.family === 'inet' && ips.has(a.local))
    if (addr) return this.link(state, addr.dev)
    const viaTunnel = this.profile.tunnel && this.link(state, this.profile.tunnel.dev)?.vxlan?.dev
    return (viaTunnel && this.link(state, viaTunnel)) || this.link(state, 'eth0')
  }

  /** The subnets on the node's uplink (`10.0.0.11/24` as written on the interface). */
  uplinkSubnets(n: SnapshotNode, state: NodeState): string[] {
    if (this.state(n.name) !== state) return this.uplinkSubnetsOf(n, state)
    return remembered(this.perNode.uplinkSubnets, n.name, Infinity, () => this.uplinkSubnetsOf(n, state))
  }

  /** Is this address on a subnet of the node's uplink? */
  onUplinkSubnet(n: SnapshotNode, state: NodeState, ip: string): boolean {
    // asked once per node pair about the same few thousand peer addresses: each parsed once
    // parsePrefix remembers what it parsed: asked once per node pair, each address is parsed once
    return this.uplinkTest(n, state)(ip, parsePrefix(ip))
  }

  /**
   * onUplinkSubnet for one node and many addresses (one per peer): its uplink's subnets read once.
   * ADDRESS is IP parsed (parsePrefix), when the caller has it.
   */
  uplinkTest(n: SnapshotNode, state: NodeState): (ip: string, address: Prefix4 | undefined) => boolean {
    const prefixes = (): Prefix4[] =>
      this.uplinkSubnets(n, state)
        .map((x) => parsePrefix(x))
        .filter((p): p is Prefix4 => p !== undefined)
    // remembered for the node's own state only (uplinkSubnets works out another state's afresh)
    const nets =
      this.state(n.name) !== state ? prefixes() : remembered(this.perNode.uplinkPrefixes, n.name, Infinity, prefixes)
    return (ip, a) => {
      if (!a || a.len !== 32) return this.uplinkSubnets(n, state).some((net) => contains(net, ip))
      for (const p of nets) if ((a.net & maskOf(p.len)) >>> 0 === p.net) return true
      return false
    }
  }

  private uplinkSubnetsOf(n: SnapshotNode, state: NodeState): string[] {
    const up = this.uplink(n, state)
    return state.addresses
      .filter((a) => a.family === 'inet' && a.dev === up?.name)
      .map((a) => `${a.local}/${a.prefixlen}`)
  }

  /** A node's VTEP (vxlan backends): its address on the tunnel and its MAC. */
  vtep(n: SnapshotNode): Vtep {
    return perNodeValue(this.perNode.vtep, n, this, this.vtepOf)
  }

  private vtepOf(n: SnapshotNode): Vtep {
    const out: Vtep = {}
    const tunnel = this.profile.tunnel
    if (!tunnel || tunnel.kind !== 'vxlan') return out
    if (this.profile.family === 'flannel') {
      // podNets are canonical ("10.244.1.0/24"): the network is the text before the slash
      const first = this.podNets(n)[0]
      if (first) out.ip = first.slice(0, first.indexOf('/'))
      const raw = n.annotations[ANN.flannelBackendData]
      const data = parseJsonObject(raw)
      if (typeof data?.VtepMAC === 'string') {
        out.mac = data.VtepMAC.toLowerCase()
        out.macSource = `${n.name}: ${annotationLine(ANN.flannelBackendData, raw!)}`
      }
      if (typeof data?.VNI === 'number') out.vni = data.VNI
    } else {
      const ip = n.annotations[ANN.calicoVxlanIP]
      out.ip = ip && isIPv4(ip) ? ip : networkOf(this.podNets(n)[0] ?? '')
      const mac = n.annotations[ANN.calicoVxlanMAC]
      if (mac) {
        out.mac = mac.toLowerCase()
        out.macSource = `${n.name}: ${annotationLine(ANN.calicoVxlanMAC, mac)}`
      }
    }
    if (!out.mac) {
      // no annotation: the peer's own device, if it was collected
      const dev = this.state(n.name) && this.link(this.state(n.name)!, tunnel.dev)
      if (dev?.mac) {
        out.mac = dev.mac.toLowerCase()
        out.macSource = `${n.name}: ${linkLine(dev)}`
      }
    }
    return out
  }

  /** A node's tables indexed (routes by destination, neighbours, FDB, links), built on first use for this run. */
  index(state: NodeState): StateIndex {
    if (state === this.current?.state) return (this.perVisit.index ??= new StateIndex(state))
    let ix = this.indexes.get(state)
    if (!ix) this.indexes.set(state, (ix = new StateIndex(state)))
    return ix
  }

  /** A value worked out once per snapshot and shared by the checks that need it (peer views, expected routes). */
  memo<V>(key: string, make: () => V): V {
    return remembered((SHARED_MEMOS.has(key) ? this.values.memos : this.memos) as Map<string, V>, key, Infinity, make)
  }

  /** A value about the examined nodes, shared by the checks of one node visit (a streamed run), or of the whole run. */
  nodeMemo<V>(key: string, make: () => V): V {
    return remembered(this.perVisit.memos as Map<string, V>, key, Infinity, make)
  }

  /** How many nodes hold each pod subnet (a subnet two nodes hold has no one right route). */
  podNetHolders(): Map<string, number> {
    return this.memo('podNetHolders', () => {
      const holders = new Map<string, number>()
      for (const n of this.nodes) for (const net of this.podNets(n)) holders.set(net, (holders.get(net) ?? 0) + 1)
      return holders
    })
  }

  /**
   * The pod subnets (node, subnet) that share an address with `cidr`, in
   * node order: those that contain it, found by one lookup per prefix
   * length, and those inside it, found by binary search over the subnets
   * sorted by address. Never a scan of every subnet.
   */
  podNetsOverlapping(cidr: string): Array<{node: string; net: string}> {
    const p = parsePrefix(cidr)
    if (!p) return []
    const ix = this.memo('podNetIndex', () => this.podNetIndex())
    const hits: number[] = []
    for (let len = 0; len <= p.len; len++) {
      for (const i of ix.exact.get(prefixKey((p.net & maskOf(len)) >>> 0, len)) ?? []) hits.push(i)
    }
    const end = p.net + 2 ** (32 - p.len) - 1
    for (let k = firstStartingAt(ix.sorted, p.net); k < ix.sorted.length && ix.sorted[k]!.start <= end; k++)
      if (ix.sorted[k]!.len > p.len) hits.push(ix.sorted[k]!.i)
    return [...new Set(hits)].sort((a, b) => a - b).map((i) => ix.all[i]!)
  }

  /**
   * Does any pod subnet share an address with `cidr`? Answered once per subnet text: every node
   * holds a route for each peer's subnet, so the same question comes back once per node.
   */
  overlapsPodNet(cidr: string): boolean {
    const seen = this.memo('podNetOverlaps', () => new Map<string, boolean>())
    let v = seen.get(cidr)
    if (v === undefined) seen.set(cidr, (v = this.overlapsAnyPodNet(cidr)))
    return v
  }

  /** podNetsOverlapping(cidr).length > 0, answered at the first hit (a node's route to a peer is that peer's subnet: the exact lookup) */
  private overlapsAnyPodNet(cidr: string): boolean {
    const p = parsePrefix(cidr)
    if (!p) return false
    const ix = this.memo('podNetIndex', () => this.podNetIndex())
    for (let len = p.len; len >= 0; len--) {
      if (ix.exact.has(prefixKey((p.net & maskOf(len)) >>> 0, len))) return true
    }
    const end = p.net + 2 ** (32 - p.len) - 1
    for (let k = firstStartingAt(ix.sorted, p.net); k < ix.sorted.length && ix.sorted[k]!.start <= end; k++)
      if (ix.sorted[k]!.len > p.len) return true
    return false
  }

  private podNetIndex() {
    const all = this.nodes.flatMap((n) => this.podNets(n).map((net) => ({node: n.name, net})))
    const exact = new Map<number, number[]>()
    const sorted: Array<{start: number; len: number; i: number}> = []
    all.forEach((o, i) => {
      const p = parsePrefix(o.net)
      if (!p) return
      const k = prefixKey(p.net, p.len)
      const same = exact.get(k)
      if (same) same.push(i)
      else exact.set(k, [i])
      sorted.push({start: p.net, len: p.len, i})
    })
    sorted.sort((a, b) => a.start - b.start || a.len - b.len)
    return {all, exact, sorted}
  }

  /** Every VTEP MAC of the cluster → its node. */
  vtepMACs(): Map<string, string> {
    return this.memo('vtepMACs', () => this.vtepMACsOf())
  }

  private vtepMACsOf(): Map<string, string> {
    const m = new Map<string, string>()
    for (const n of this.nodes) {
      const mac = this.vtep(n).mac
      if (mac) m.set(mac, n.name)
      const s = this.state(n.name)
      const dev = this.profile.tunnel && s && this.link(s, this.profile.tunnel.dev)
      if (dev?.mac && !m.has(dev.mac.toLowerCase())) m.set(dev.mac.toLowerCase(), n.name)
    }
    return m
  }
}

/** The addresses a Node object names, unchecked: InternalIP, ExternalIP, flannel's public-ip, Calico's IPv4Address without its length. */
function namedAddresses(n: SnapshotNode): Array<string | undefined> {
  const calico = n.annotations[ANN.calicoIPv4]
  return [n.internalIP, n.externalIP, n.annotations[ANN.flannelPublicIP], calico && stripPrefix(calico)]
}

/**
 * M's value for node N, made by MAKE (a method of CTX, passed as it is) the first time: asked per
 * peer by several checks, so no closure is made per question (nor per node the first time).
 */
function perNodeValue<V>(
  m: Map<string, V>,
  n: SnapshotNode,
  ctx: CheckContext,
  make: (this: CheckContext, n: SnapshotNode) => V,
): V {
  const known = m.get(n.name)
  if (known !== undefined || m.has(n.name)) return known!
  const made = make.call(ctx, n)
  m.set(n.name, made)
  return made
}

export function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined
  try {
    const v = JSON.parse(text) as unknown
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** The first of `sorted` (ascending by start) that starts at or after `start`: a binary search. */
function firstStartingAt(sorted: ReadonlyArray<{start: number}>, start: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid]!.start < start) lo = mid + 1
    else hi = mid
  }
  return lo
}
