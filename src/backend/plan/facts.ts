import {createHash} from 'node:crypto'

import {compileFib, lookupRoute} from '../../analyze/fib.js'
import {canonical, stripPrefix} from '../../analyze/ip.js'
import type {NodeState} from '../../model/node-state.js'
import type {Snapshot, SnapshotNode} from '../../model/snapshot.js'
import {TUNNEL_DEVICES} from './profiles.js'
import type {ClusterFacts, NodeFacts} from './types.js'

/**
 * The node facts a desired state is computed from, read from a snapshot (the
 * node objects and what the kernel holds). Pure.
 */

/** Annotations that carry a node's VTEP MAC, in the order they are believed. */
export const VTEP_MAC_ANNOTATIONS = {
  flannel: 'flannel.alpha.coreos.com/backend-data',
  calico: 'projectcalico.org/VXLANTunnelMACAddr',
  /** netctl writes this one so the MAC survives a switch to a backend without a VTEP */
  netctl: 'netctl.dev/vtep-mac',
} as const
export const CALICO_TUNNEL_ADDR_ANNOTATION = 'projectcalico.org/IPv4VXLANTunnelAddr'

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i

/** The VTEP MAC a node's annotations give, if any. */
export function annotatedVtepMAC(annotations: Record<string, string>): string | undefined {
  try {
    const data = JSON.parse(annotations[VTEP_MAC_ANNOTATIONS.flannel] ?? 'null') as {VtepMAC?: unknown} | null
    if (data && typeof data.VtepMAC === 'string' && MAC_RE.test(data.VtepMAC)) return data.VtepMAC.toLowerCase()
  } catch {
    /* not JSON: look further */
  }
  for (const key of [VTEP_MAC_ANNOTATIONS.calico, VTEP_MAC_ANNOTATIONS.netctl]) {
    const v = annotations[key]
    if (v && MAC_RE.test(v)) return v.toLowerCase()
  }
  return undefined
}

/** A stable, locally administered unicast MAC (the lab's VTEP MACs are made the same way). */
export function stableMAC(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex')
  const bytes = [0, 1, 2, 3, 4, 5].map((i) => Number.parseInt(h.slice(i * 2, i * 2 + 2), 16))
  bytes[0] = ((bytes[0] ?? 0) & 0xfe) | 0x02
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':')
}

function uplinkOf(node: SnapshotNode, state: NodeState | undefined): {uplink: string; subnet: string; mtu?: number} {
  const addr = state?.addresses.find((a) => a.family === 'inet' && a.local === node.internalIP)
  if (!addr) return {uplink: 'eth0', subnet: `${node.internalIP}/32`}
  const link = state?.links.find((l) => l.name === addr.dev)
  const subnet = canonical(`${addr.local}/${addr.prefixlen}`)
  return {uplink: addr.dev, subnet, ...(link ? {mtu: link.mtu} : {})}
}

/**
 * The router through which each peer is reached, as the node's own table says
 * (`ip route get <peerIP>` gives a gateway): BIRD resolves a BGP next hop that
 * is not on a connected subnet through this route (`gateway recursive`).
 */
function gatewaysOf(state: NodeState | undefined, self: SnapshotNode, peers: SnapshotNode[]): NodeFacts['gatewayTo'] {
  if (!state) return undefined
  const fib = compileFib(state)
  const out: NonNullable<NodeFacts['gatewayTo']> = {}
  for (const peer of peers) {
    if (peer.name === self.name) continue
    let d: ReturnType<typeof lookupRoute>
    try {
      d = lookupRoute(fib, {dst: peer.internalIP})
    } catch {
      continue // a node object without a usable InternalIP: nothing to resolve
    }
    if (d.type === 'unicast' && !d.error && d.gateway && d.dev && d.gateway !== peer.internalIP)
      out[peer.name] = {gateway: d.gateway, dev: d.dev}
  }
  return Object.keys(out).length > 0 ? out : undefined
}

export interface FactsHints {
  /** VTEP MACs known apart from annotations (a lab's record) */
  vtepMACs?: Record<string, string>
}

/** Facts of every node of a snapshot; a node that was not collected gets what its node object says. */
export function clusterFacts(snapshot: Snapshot, hints: FactsHints = {}): ClusterFacts {
  let underlayMTU = 0
  const nodes: NodeFacts[] = snapshot.nodes.map((n) => {
    const state = snapshot.nodeStates[n.name]
    const up = uplinkOf(n, state)
    if (up.mtu && (underlayMTU === 0 || up.mtu < underlayMTU)) underlayMTU = up.mtu
    const podCIDR = n.podCIDRs[0] ?? ''
    const device = state?.links.find(
      (l) => (l.name === TUNNEL_DEVICES.flannelVxlan || l.name === TUNNEL_DEVICES.calicoVxlan) && l.mac,
    )
    const vtepMAC =
      annotatedVtepMAC(n.annotations) ??
      hints.vtepMACs?.[n.name] ??
      device?.mac ??
      stableMAC(snapshot.cluster.name, n.name, 'vtep')
    const tunnelIP = n.annotations[CALICO_TUNNEL_ADDR_ANNOTATION] ?? stripPrefix(podCIDR)
    const gatewayTo = gatewaysOf(state, n, snapshot.nodes)
    return {
      name: n.name,
      ip: n.internalIP,
      podCIDR,
      uplink: up.uplink,
      subnet: up.subnet,
      vtepMAC,
      tunnelIP,
      ...(gatewayTo ? {gatewayTo} : {}),
    }
  })
  return {
    name: snapshot.cluster.name,
    clusterCIDR: snapshot.cluster.clusterCIDR,
    underlayMTU: underlayMTU || 1500,
    nodes,
  }
}
