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
import type {StateIndex} from './state-index.js'

/** Is the peer on a subnet of this node's uplink (reachable without a router)? */
export function adjacent(ctx: CheckContext, node: SnapshotNode, state: NodeState, peerIP: string): boolean {
  return ctx.onUplinkSubnet(node, state, peerIP)
}

/** The node's route for one of the peer's pod subnets when it goes straight to the peer over the uplink. */
export function nativeRouteTo(
  ctx: CheckContext,
  node: SnapshotNode,
  state: NodeState,
  peer: SnapshotNode,
): Route | undefined {
  return nativeRoutes(ctx, node, state)(peer, ctx.underlayIP(peer))
}

/** nativeRouteTo for one node and each of its peers in turn (PEER_IP: the peer's underlay address): the node's uplink read once. */
export function nativeRoutes(
  ctx: CheckContext,
  node: SnapshotNode,
  state: NodeState,
): (peer: SnapshotNode, peerIP: string) => Route | undefined {
  const uplink = ctx.uplink(node, state)?.name
  if (!uplink) return () => undefined
  const gateways = uplinkGateways(state, uplink)
  const ix = ctx.index(state)
  return (peer, peerIP) => {
    // asked per node pair: most peers have no route via them on the uplink, said without the adjacency test
    if (!gateways.has(peerIP) || !adjacent(ctx, node, state, peerIP)) return undefined
    const nets = ctx.podNets(peer)
    const match = (x: Route) => x.type === 'unicast' && x.gateway === peerIP && x.dev === uplink
    if (nets.length === 1) return ix.routesTo(nets[0]!).find(match)
    // the first such route in the kernel's order, looked up by subnet rather than scanned for
    let first: Route | undefined
    let at = Infinity
    for (const net of nets) {
      const r = ix.routesTo(net).find(match)
      const pos = r ? ix.mainRoutes.indexOf(r) : Infinity
      if (r && pos < at) [first, at] = [r, pos]
    }
    return first
  }
}

/**
 * per routing table read (keyed by the array: a state given new routes is worked out again) and
 * uplink, the gateways of its unicast routes over that uplink (any table: a superset is enough)
 */
const gateways = new WeakMap<Route[], Map<string, Set<string>>>()

function uplinkGateways(state: NodeState, uplink: string): Set<string> {
  let byDev = gateways.get(state.routes)
  if (!byDev) gateways.set(state.routes, (byDev = new Map()))
  let set = byDev.get(uplink)
  if (!set) {
    set = new Set()
    for (const r of state.routes) if (r.type === 'unicast' && r.dev === uplink && r.gateway) set.add(r.gateway)
    byDev.set(uplink, set)
  }
  return set
}

/** Tunnel state (FDB entry or neighbour) a node holds for a peer on the tunnel device. */
export function hasTunnelState(ctx: CheckContext, state: NodeState, peer: SnapshotNode): boolean {
  const t = ctx.profile.tunnel
  if (!t) return false
  const vtepIP = ctx.vtep(peer).ip
  const ix = ctx.index(state)
  return (
    ix.fdbTo(t.dev, ctx.underlayIP(peer)).length > 0 ||
    (vtepIP !== undefined && ix.neighbour(t.dev, vtepIP) !== undefined)
  )
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
export function arrivalFrom(
  ctx: CheckContext,
  node: SnapshotNode,
  state: NodeState,
  peer: SnapshotNode,
): 'tunnel' | 'uplink' {
  const peerState = ctx.state(peer.name)
  const t = ctx.profile.tunnel
  if (!t) return 'uplink'
  if (peerState && ctx.ok(peerState, 'routes4')) {
    const back = firstRouteTo(ctx.index(peerState), ctx.podNets(node))
    if (back?.dev === t.dev) return 'tunnel'
    if (back && back.type === 'unicast' && back.gateway === ctx.underlayIP(node)) return 'uplink'
  }
  return ctx.profile.crossSubnet && adjacent(ctx, node, state, ctx.underlayIP(peer)) ? 'uplink' : 'tunnel'
}

/** The first main-table route (in the kernel's order) for exactly one of these subnets. */
function firstRouteTo(ix: StateIndex, nets: string[]): Route | undefined {
  if (nets.length === 1) return ix.firstRouteTo(nets[0]!)
  const found = nets.map((n) => ix.firstRouteTo(n)).filter((r): r is Route => r !== undefined)
  return found.sort((a, b) => ix.mainRoutes.indexOf(a) - ix.mainRoutes.indexOf(b))[0]
}
