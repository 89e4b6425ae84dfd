/**
 * Which dataplane the checks expect: the backend the snapshot names, or, when
 * it names none netctl knows, the one the node state shows (flannel.1,
 * flannel0, vxlan.calico, tunl0, BIRD, flannel's backend-type annotation).
 */
import type {NodeState} from '../../model/node-state.js'
import type {Snapshot} from '../../model/snapshot.js'

export type BackendMode =
  | 'flannel-vxlan'
  | 'flannel-host-gw'
  | 'flannel-udp'
  | 'canal'
  | 'calico-bgp'
  | 'calico-rr'
  | 'calico-ipip'
  | 'calico-vxlan'
  | 'unknown'

export interface TunnelSpec {
  dev: string
  kind: 'vxlan' | 'tun' | 'ipip'
  /** the VNI and UDP port the backend uses unless configured otherwise */
  vni?: number
  port?: number
  /** bytes the encapsulation adds: vxlan 50, flannel udp 28, IPIP 20 */
  overhead: number
}

export interface BackendProfile {
  /** as the snapshot names it */
  name: string
  mode: BackendMode
  /** whose agent programs the per-peer state: flannel (also Canal's dataplane) or Calico */
  family: 'flannel' | 'calico' | 'unknown'
  tunnel?: TunnelSpec
  /** the bridge local pods hang off (flannel's cni0); Calico routes to each pod's veth instead */
  bridge?: string
  /**
   * How each peer's pod subnet is reached: via its VTEP on the tunnel (vxlan),
   * via its node IP on the uplink (host-gw, Calico BGP) or on tunl0 (IPIP),
   * or one cluster-wide route into a userspace tunnel (flannel udp).
   */
  peerRoute: 'vtep' | 'node' | 'node-tunnel' | 'cluster-tunnel' | 'unknown'
  /** Calico CrossSubnet: peers on the same subnet are routed natively */
  crossSubnet: boolean
  /** BIRD carries the routes (Calico BGP, route reflectors, IPIP) */
  bgp: boolean
  /** the CNI enforces NetworkPolicy (Calico, Canal) */
  policy: boolean
}

const FLANNEL_VXLAN: TunnelSpec = {dev: 'flannel.1', kind: 'vxlan', vni: 1, port: 8472, overhead: 50}
const FLANNEL_UDP: TunnelSpec = {dev: 'flannel0', kind: 'tun', port: 8285, overhead: 28}
const CALICO_VXLAN: TunnelSpec = {dev: 'vxlan.calico', kind: 'vxlan', vni: 4096, port: 4789, overhead: 50}
const CALICO_IPIP: TunnelSpec = {dev: 'tunl0', kind: 'ipip', overhead: 20}

function profileOf(name: string, mode: BackendMode): BackendProfile {
  const crossSubnet = /cross-?subnet/i.test(name)
  switch (mode) {
    case 'flannel-vxlan':
      return {
        name,
        mode,
        family: 'flannel',
        tunnel: FLANNEL_VXLAN,
        bridge: 'cni0',
        peerRoute: 'vtep',
        crossSubnet: false,
        bgp: false,
        policy: false,
      }
    case 'canal':
      // flannel's overlay, but the calico CNI plugin plumbs pods: cali veths, no cni0
      return {
        name,
        mode,
        family: 'flannel',
        tunnel: FLANNEL_VXLAN,
        peerRoute: 'vtep',
        crossSubnet: false,
        bgp: false,
        policy: true,
      }
    case 'flannel-host-gw':
      return {
        name,
        mode,
        family: 'flannel',
        bridge: 'cni0',
        peerRoute: 'node',
        crossSubnet: false,
        bgp: false,
        policy: false,
      }
    case 'flannel-udp':
      return {
        name,
        mode,
        family: 'flannel',
        tunnel: FLANNEL_UDP,
        bridge: 'cni0',
        peerRoute: 'cluster-tunnel',
        crossSubnet: false,
        bgp: false,
        policy: false,
      }
    case 'calico-bgp':
    case 'calico-rr':
      return {name, mode, family: 'calico', peerRoute: 'node', crossSubnet: false, bgp: true, policy: true}
    case 'calico-ipip':
      return {
        name,
        mode,
        family: 'calico',
        tunnel: CALICO_IPIP,
        peerRoute: 'node-tunnel',
        crossSubnet,
        bgp: true,
        policy: true,
      }
    case 'calico-vxlan':
      // Felix programs vxlan routes itself; BIRD may run beside it but does not carry them
      return {
        name,
        mode,
        family: 'calico',
        tunnel: CALICO_VXLAN,
        peerRoute: 'vtep',
        crossSubnet,
        bgp: false,
        policy: true,
      }
    default:
      return {
        name,
        mode: 'unknown',
        family: 'unknown',
        peerRoute: 'unknown',
        crossSubnet: false,
        bgp: false,
        policy: false,
      }
  }
}

/** Backend names as inventories and `lab up` write them, and their common spellings. */
export function modeFromName(name: string): BackendMode {
  const n = name
    .trim()
    .toLowerCase()
    .replace(/[_\s]+/g, '-')
  if (n === 'canal') return 'canal'
  if (/^(flannel-)?vxlan$/.test(n) || n === 'flannel') return 'flannel-vxlan'
  if (/^(flannel-)?host-?gw$/.test(n)) return 'flannel-host-gw'
  if (/^(flannel-)?udp$/.test(n)) return 'flannel-udp'
  if (/^calico-(rr|route-?reflectors?)$/.test(n)) return 'calico-rr'
  if (/^calico-ipip(-.*)?$/.test(n)) return 'calico-ipip'
  if (/^calico-vxlan(-.*)?$/.test(n)) return 'calico-vxlan'
  if (/^calico(-bgp)?$/.test(n)) return 'calico-bgp'
  return 'unknown'
}

/** What one node's own state says it runs, if anything. */
export function modeFromState(s: NodeState, annotations: Record<string, string> = {}): BackendMode {
  const has = (dev: string): boolean => s.links.some((l) => l.name === dev)
  if (has('vxlan.calico')) return 'calico-vxlan'
  if (has('tunl0') && s.bird) return 'calico-ipip'
  if (has('flannel.1')) return 'flannel-vxlan'
  if (has('flannel0')) return 'flannel-udp'
  if (s.bird)
    return s.bird.sessions.some((b) => /\broute-reflector\b/.test(b.session ?? '')) ||
      s.bird.sessions.some((b) => b.name.startsWith('Node_'))
      ? 'calico-rr'
      : 'calico-bgp'
  const type = annotations['flannel.alpha.coreos.com/backend-type']
  if (type === 'host-gw') return 'flannel-host-gw'
  if (type === 'vxlan') return 'flannel-vxlan'
  if (type === 'udp') return 'flannel-udp'
  return 'unknown'
}

/** The snapshot's backend; a name netctl does not know is settled by what most nodes show. */
export function detectBackend(snapshot: Snapshot): BackendProfile {
  const named = modeFromName(snapshot.cluster.backend)
  // Kubernetes detection names Canal's dataplane flannel-vxlan and its CNI canal
  if (named === 'flannel-vxlan' && snapshot.cluster.cni?.toLowerCase() === 'canal')
    return profileOf(snapshot.cluster.backend, 'canal')
  if (named !== 'unknown') return profileOf(snapshot.cluster.backend, named)
  const votes = new Map<BackendMode, number>()
  for (const node of snapshot.nodes) {
    const s = snapshot.nodeStates[node.name]
    const mode = s
      ? modeFromState(s, node.annotations)
      : modeFromState({links: []} as unknown as NodeState, node.annotations)
    if (mode !== 'unknown') votes.set(mode, (votes.get(mode) ?? 0) + 1)
  }
  const best = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]
  return profileOf(snapshot.cluster.backend, best ? best[0] : 'unknown')
}
