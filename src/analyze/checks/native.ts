/**
 * Native routes on tunnel backends. Flannel vxlan with DirectRouting and
 * Calico in CrossSubnet mode route a peer on the same subnet straight over
 * the uplink (`<podCIDR> via <peerIP> dev eth0`) and keep no tunnel state
 * for it. The checks read that from the routes a node holds, since the
 * backend's config is not part of the snapshot.
 */
import type {NodeState, Route} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import type {CheckContext} from './context.js'
import {contains} from './ip.js'

/** Is the peer on a subnet of this node's uplink (reachable without a router)? */
export function adjacent(ctx: CheckContext, node: SnapshotNode, state: NodeState, peerIP: string): boolean {
  return ctx.uplinkSubnets(node, state).some((n) => contains(n, peerIP))
}

/** The node's route for one of the peer's pod subnets when it goes straight to the peer over the uplink. */
export function nativeRouteTo(ctx: CheckContext, node: SnapshotNode, state: NodeState, peer: SnapshotNode): Route | undefined {
  const peerIP = ctx.underlayIP(peer)
  const uplink = ctx.uplink(node, state)?.name
  if (!uplink || !adjacent(ctx, node, state, peerIP)) return undefined
  const nets = ctx.podNets(peer)
  return state.routes.find((r) => r.family === 'inet' && r.table === 'main' && r.type === 'unicast' && nets.includes(r.dst) && r.gateway === peerIP && r.dev === uplink)
}

/** Tunnel state (FDB entry or neighbour) a node holds for a peer on the tunnel device. */
export function hasTunnelState(ctx: CheckContext, state: NodeState, peer: SnapshotNode): boolean {
  const t = ctx.profile.tunnel
  if (!t) return false
  const vtepIP = ctx.vtep(peer).ip
  return state.fdb.some((f) => f.dev === t.dev && f.dst === ctx.underlayIP(peer)) || state.neighbours.some((n) => n.dev === t.dev && n.dst === vtepIP)
}

/**
 * The peer is routed natively by design: a native route over the uplink to
 * an adjacent peer, and no tunnel state for it (DirectRouting / CrossSubnet).
 * With tunnel state beside it, the native route is the odd one out instead.
 */
export function directlyRouted(ctx: CheckContext, node: SnapshotNode, state: NodeState, peer: SnapshotNode): boolean {
  if (!ctx.profile.tunnel || ctx.profile.peerRoute === 'cluster-tunnel') return false
  return nativeRouteTo(ctx, node, state, peer) !== undefined && !hasTunnelState(ctx, state, peer)
}

/**
 * The interface packets from a peer's pods arrive on: what the peer's own
 * route towards this node's pods uses (the tunnel, or the uplink when it
 * routes natively), else what the backend does by default.
 */
export function arrivalFrom(ctx: CheckContext, node: SnapshotNode, state: NodeState, peer: SnapshotNode): 'tunnel' | 'uplink' {
  const peerState = ctx.state(peer.name)
  const t = ctx.profile.tunnel
  if (!t) return 'uplink'
  if (peerState && ctx.ok(peerState, 'routes4')) {
    const nets = ctx.podNets(node)
    const back = peerState.routes.find((r) => r.family === 'inet' && r.table === 'main' && nets.includes(r.dst))
    if (back?.dev === t.dev) return 'tunnel'
    if (back && back.type === 'unicast' && back.gateway === ctx.underlayIP(node)) return 'uplink'
  }
  return ctx.profile.crossSubnet && adjacent(ctx, node, state, ctx.underlayIP(peer)) ? 'uplink' : 'tunnel'
}
