/**
 * What every check needs to know about the cluster, worked out once from the
 * snapshot: the backend, each node's underlay address, pod subnets and VTEP,
 * its uplink, and which probe sections can be trusted.
 */
import type {Link, NodeState} from '../../model/node-state.js'
import type {Snapshot, SnapshotNode} from '../../model/snapshot.js'
import {type BackendProfile, detectBackend} from './backend.js'
import {annotationLine, linkLine} from './evidence.js'
import {canonical, contains, isIPv4, networkOf, parsePrefix, stripPrefix} from './ip.js'

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

export class CheckContext {
  readonly profile: BackendProfile
  readonly nodes: SnapshotNode[]
  private readonly ipOwner = new Map<string, string>()
  /** name → node: lookups by name stay O(1) however many nodes (and errors, peers) there are */
  private readonly byName = new Map<string, SnapshotNode>()

  constructor(readonly snapshot: Snapshot) {
    this.profile = detectBackend(snapshot)
    this.nodes = snapshot.nodes
    for (const n of this.nodes) {
      if (!this.byName.has(n.name)) this.byName.set(n.name, n)
      for (const ip of this.addressesOf(n)) if (!this.ipOwner.has(ip)) this.ipOwner.set(ip, n.name)
    }
  }

  state(node: string): NodeState | undefined {
    return this.snapshot.nodeStates[node]
  }

  /** Nodes whose state was collected, with it. */
  collected(): Array<{node: SnapshotNode; state: NodeState}> {
    return this.nodes.flatMap((node) => {
      const state = this.state(node.name)
      return state ? [{node, state}] : []
    })
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
    const a = [n.internalIP, n.externalIP, n.annotations[ANN.flannelPublicIP], n.annotations[ANN.calicoIPv4] && stripPrefix(n.annotations[ANN.calicoIPv4]!)]
    return [...new Set(a.filter((x): x is string => typeof x === 'string' && isIPv4(x)))]
  }

  /** The node an underlay address belongs to, if any. */
  ownerOfIP(ip: string): string | undefined {
    return this.ipOwner.get(ip)
  }

  /** The address peers send to: flannel's public-ip, Calico's IPv4Address, else the InternalIP. */
  underlayIP(n: SnapshotNode): string {
    const ann = this.profile.family === 'calico' ? n.annotations[ANN.calicoIPv4] : n.annotations[ANN.flannelPublicIP]
    return ann && isIPv4(stripPrefix(ann)) ? stripPrefix(ann) : n.internalIP
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
    if (this.profile.family === 'calico') {
      const s = this.state(n.name)
      const blocks = (s?.routes ?? [])
        .filter((r) => r.family === 'inet' && r.table === 'main' && r.type === 'blackhole' && (r.protocol === 'bird' || r.protocol === '80'))
        .map((r) => r.dst)
        .filter((d) => contains(this.snapshot.cluster.clusterCIDR, d))
      if (blocks.length > 0) return blocks
    }
    return n.podCIDRs.filter((c) => parsePrefix(c) !== undefined).map(canonical)
  }

  /** Every other node. */
  peers(of: string): SnapshotNode[] {
    return this.nodes.filter((n) => n.name !== of)
  }

  link(state: NodeState, name: string): Link | undefined {
    return state.links.find((l) => l.name === name)
  }

  /** The interface that holds the node's underlay address (its uplink). */
  uplink(n: SnapshotNode, state: NodeState): Link | undefined {
    const ips = new Set([this.underlayIP(n), n.internalIP])
    const addr = state.addresses.find((a) => a.family === 'inet' && ips.has(a.local))
    if (addr) return this.link(state, addr.dev)
    const viaTunnel = this.profile.tunnel && this.link(state, this.profile.tunnel.dev)?.vxlan?.dev
    return (viaTunnel && this.link(state, viaTunnel)) || this.link(state, 'eth0')
  }

  /** The subnets on the node's uplink (`10.0.0.11/24` as written on the interface). */
  uplinkSubnets(n: SnapshotNode, state: NodeState): string[] {
    const up = this.uplink(n, state)
    return state.addresses.filter((a) => a.family === 'inet' && a.dev === up?.name).map((a) => `${a.local}/${a.prefixlen}`)
  }

  /** A node's VTEP (vxlan backends): its address on the tunnel and its MAC. */
  vtep(n: SnapshotNode): Vtep {
    const out: Vtep = {}
    const tunnel = this.profile.tunnel
    if (!tunnel || tunnel.kind !== 'vxlan') return out
    if (this.profile.family === 'flannel') {
      const first = this.podNets(n)[0]
      if (first) out.ip = networkOf(first)
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

  /** Every VTEP MAC of the cluster → its node. */
  vtepMACs(): Map<string, string> {
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

export function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined
  try {
    const v = JSON.parse(text) as unknown
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
