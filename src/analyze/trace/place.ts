import type {Link, Neighbour, NodeState, PodNetnsState, SectionStatus} from '../../model/node-state.js'
import type {Snapshot, SnapshotNode, SnapshotPod} from '../../model/snapshot.js'
import {type CompiledFib, compileFib, type FibState} from '../fib.js'
import {cidrContains, ipText, parseCidr, parseIp} from '../ip.js'
import type {NeighbourView} from '../neighbour.js'

/**
 * Where a packet can be: a node's own (host) network namespace or one pod's.
 * A place carries the state the walk reads there, compiled once.
 */
export interface Place {
  node: string
  /** the namespace as hops name it: the pod's netns, or the node's */
  netns: string
  state: NodeState
  /** set when the place is a pod's namespace */
  pod?: PodNetnsState
  /** what the forwarding and neighbour models read: the node's state, or the pod's */
  fibState: FibState & NeighbourView
  fib: CompiledFib
  links: Map<string, Link>
  neighbours: Neighbour[]
  sections: Record<string, {status: SectionStatus; message?: string}>
}

export const isHost = (p: Place): boolean => p.pod === undefined

/** The snapshot, indexed for the walk: nodes and pods by name and address, places built on demand. */
export class SnapshotIndex {
  private readonly places = new Map<string, Place>()
  /**
   * Pods (NAMESPACE/NAME) the walk looked for that their node's state does not hold although the
   * snapshot lists them on it: a live trace reads a node's pods only as the walk asks for them.
   */
  readonly needPods = new Set<string>()
  /** nodes by name (the first of a name), made on first use */
  private byName?: Map<string, SnapshotNode>
  /** see collectedNodes */
  private withState?: SnapshotNode[]
  /** see nodeAddresses */
  private addressOwners?: Map<string, SnapshotNode>

  constructor(readonly snapshot: Snapshot) {}

  /** The snapshot's pods on `node` (not host-network ones) whose namespaces its state does not hold. */
  unreadPods(node: string): SnapshotPod[] {
    const state = this.state(node)
    const read = new Set((state?.pods ?? []).map((p) => `${p.namespace}/${p.name}`))
    return this.snapshot.pods.filter((p) => p.node === node && !p.hostNetwork && !read.has(`${p.namespace}/${p.name}`))
  }

  /** Every pod of `node` not read yet is wanted: the walk needs one of them and cannot tell which. */
  wantUnreadPods(node: string): void {
    for (const p of this.unreadPods(node)) this.needPods.add(`${p.namespace}/${p.name}`)
  }

  node(name: string): SnapshotNode | undefined {
    if (!this.byName) {
      this.byName = new Map()
      for (const n of this.snapshot.nodes) if (!this.byName.has(n.name)) this.byName.set(n.name, n)
    }
    return this.byName.get(name)
  }

  /**
   * The node's namespace name: the one it was entered through, as the
   * inventory says (a lab node's); a lab snapshot of an older netctl, which
   * did not keep it, names it LAB.NODE as `lab up` does; elsewhere it is the host's own.
   */
  hostNetns(node: string): string {
    const netns = this.node(node)?.netns
    if (netns !== undefined) return netns
    return this.snapshot.cluster.source === 'lab' ? `${this.snapshot.cluster.name}.${node}` : 'host'
  }

  state(node: string): NodeState | undefined {
    return this.snapshot.nodeStates[node]
  }

  host(node: string): Place | undefined {
    const key = `host|${node}`
    const cached = this.places.get(key)
    if (cached) return cached
    const state = this.state(node)
    if (!state) return undefined
    const fibState: FibState & NeighbourView = state
    const place: Place = {
      node,
      netns: this.hostNetns(node),
      state,
      fibState,
      fib: compileFib(fibState),
      links: new Map(state.links.map((l) => [l.name, l])),
      neighbours: state.neighbours,
      sections: state.sections,
    }
    this.places.set(key, place)
    return place
  }

  /** A pod's namespace as its node's probe recorded it. */
  pod(node: string, namespace: string, name: string): Place | undefined {
    const key = `pod|${node}|${namespace}/${name}`
    const cached = this.places.get(key)
    if (cached) return cached
    const state = this.state(node)
    const pod = state?.pods.find((p) => p.namespace === namespace && p.name === name)
    if (!state || !pod) {
      if (this.snapshot.pods.some((p) => p.node === node && p.namespace === namespace && p.name === name))
        this.needPods.add(`${namespace}/${name}`)
      return undefined
    }
    // pods carry no rules or sysctls of their own in a snapshot: the kernel's defaults apply
    const fibState: FibState & NeighbourView = pod
    const place: Place = {
      node,
      netns: pod.netns,
      state,
      pod,
      fibState,
      fib: compileFib(fibState),
      links: new Map(pod.links.map((l) => [l.name, l])),
      neighbours: pod.neighbours,
      sections: pod.sections ?? {},
    }
    this.places.set(key, place)
    return place
  }

  podPlace(p: PodNetnsState, node: string): Place | undefined {
    return this.pod(node, p.namespace, p.name)
  }

  /** The node one of whose addresses (InternalIP, ExternalIP, or any address its host namespace holds) is `ip`. */
  nodeOwning(ip: string): SnapshotNode | undefined {
    const t = parseIp(ip)?.text
    if (!t) return undefined
    const byName = this.nodeAddresses().get(t)
    if (byName) return byName
    // only the nodes whose state was read hold addresses: those, in node order, not every node of the cluster
    return this.collectedNodes().find((n) =>
      this.state(n.name)!.addresses.some(
        (a) => a.family === 'inet' && a.scope !== 'host' && parseIp(a.local)?.text === t,
      ),
    )
  }

  /** the nodes whose state the snapshot holds, in node order */
  private collectedNodes(): SnapshotNode[] {
    return (this.withState ??= this.snapshot.nodes.filter((n) => this.state(n.name) !== undefined))
  }

  /**
   * Each InternalIP and ExternalIP (canonical text) → the first node, in node order, that has it:
   * the walk asks a few times per trace which node an address is, over thousands of nodes.
   */
  private nodeAddresses(): Map<string, SnapshotNode> {
    if (!this.addressOwners) {
      const owners = new Map<string, SnapshotNode>()
      const own = (text: string | undefined, n: SnapshotNode) => {
        const t = text === undefined ? undefined : ipText(text)
        if (t !== undefined && !owners.has(t)) owners.set(t, n)
      }
      for (const n of this.snapshot.nodes) {
        own(n.internalIP, n)
        if (n.externalIP) own(n.externalIP, n)
      }
      this.addressOwners = owners
    }
    return this.addressOwners
  }

  /** The node whose podCIDR holds `ip`. */
  nodeForPodIP(ip: string): SnapshotNode | undefined {
    const a = parseIp(ip)
    if (!a) return undefined
    return this.snapshot.nodes.find((n) =>
      n.podCIDRs.some((c) => {
        const cidr = parseCidr(c)
        return !!cidr && cidrContains(cidr, a)
      }),
    )
  }

  podByIP(ip: string): SnapshotPod | undefined {
    const t = parseIp(ip)?.text
    return this.snapshot.pods.find((p) => parseIp(p.ip)?.text === t)
  }

  /** Inside the cluster network, or a node's pod range: a pod address. */
  isPodAddress(ip: string): boolean {
    const a = parseIp(ip)
    const cluster = parseCidr(this.snapshot.cluster.clusterCIDR)
    return !!a && ((!!cluster && cidrContains(cluster, a)) || !!this.nodeForPodIP(ip))
  }

  collectionError(node: string): string | undefined {
    const e = this.snapshot.errors.find((x) => x.node === node)
    return e ? `${e.code}: ${e.message}` : undefined
  }
}
