/**
 * Routing checks: every node holds the route its backend programs for each
 * peer's pod subnet, through the right next hop, and nothing else for the
 * pod network (no leftovers, no blackhole over a peer's pods).
 */
import type {NodeState, Route} from '../../model/node-state.js'
import type {SnapshotNode} from '../../model/snapshot.js'
import {canonical, contains, parsePrefix, prefixContains} from '../ip.js'
import type {CheckContext} from './context.js'
import {neighLine, routeLine, someNames} from './evidence.js'
import {adjacent, directlyRouted} from './native.js'
import {tunnelUsable} from './overlay-device.js'
import {type Check, raise, type Raised, raisedOver} from './raise.js'

export interface ExpectedRoute {
  node: SnapshotNode
  state: NodeState
  peer: SnapshotNode
  net: string
  gateway?: string
  dev: string
  /** what the kernel holds for exactly that subnet */
  actual?: Route
}

const mainRoutes = (ctx: CheckContext, s: NodeState): Route[] => ctx.index(s).mainRoutes

/**
 * The route each node should hold per peer subnet, where the backend has one
 * per peer (not flannel udp) and the state to hold it is there: routes read,
 * the tunnel up, host-gw peers adjacent (HOSTGW_NOT_L2_ADJACENT covers the rest).
 */
export function expectedRoutes(ctx: CheckContext): ExpectedRoute[] {
  return ctx.nodeMemo('expectedRoutes', () => expectedRoutesOf(ctx))
}

function expectedRoutesOf(ctx: CheckContext): ExpectedRoute[] {
  const p = ctx.profile
  if (p.peerRoute === 'cluster-tunnel' || p.peerRoute === 'unknown') return []
  // what a peer asks of every node is the same from each: worked out once per peer, not per pair
  const peers = ctx.memo('expectedRoutePeers', () => {
    // a subnet two nodes hold has no one right route (PODCIDR_DUPLICATE says so)
    const holders = ctx.podNetHolders()
    return ctx.nodes.map((peer) => {
      const ip = ctx.underlayIP(peer)
      return {
        peer,
        ip,
        address: parsePrefix(ip),
        vtepIP: p.peerRoute === 'vtep' ? ctx.vtep(peer).ip : undefined,
        nets: ownNets(ctx.podNets(peer), holders),
      }
    })
  })
  // one per node pair: loops that push, not arrays made per peer and flattened
  const out: ExpectedRoute[] = []
  for (const {node, state} of ctx.examined()) {
    if (!ctx.ok(state, 'routes4', 'links', 'addresses')) continue
    if (p.tunnel && !tunnelUsable(ctx, state)) continue
    const uplink = ctx.uplink(node, state)
    if (!uplink) continue
    const ix = ctx.index(state)
    const onUplink = ctx.uplinkTest(node, state)
    for (const {peer, ip: peerIP, address, vtepIP, nets} of peers) {
      if (peer.name === node.name) continue
      const near = onUplink(peerIP, address)
      if (p.mode === 'flannel-host-gw' && !near) continue
      const native = p.peerRoute === 'node' || (p.crossSubnet && near)
      const gateway = native ? peerIP : p.peerRoute === 'vtep' ? vtepIP : peerIP
      const dev = native ? uplink.name : p.tunnel!.dev
      // every expected route of one shape (gateway and actual set, if only to undefined): its readers stay monomorphic
      for (const net of nets)
        out.push({node, state, peer, net, dev, gateway: gateway || undefined, actual: ix.firstRouteTo(net)})
    }
  }
  return out
}

/** The subnets of NETS no other node holds too: NETS itself when that is all of them (a peer's usual case, no array made). */
function ownNets(nets: string[], holders: Map<string, number>): string[] {
  for (const net of nets) if ((holders.get(net) ?? 0) > 1) return nets.filter((n) => (holders.get(n) ?? 0) <= 1)
  return nets
}

/** BIRD's best route for a prefix, when BIRD was read on the node. */
function birdBest(state: NodeState, net: string) {
  return state.bird?.routes.find((r) => r.prefix === net && r.primary && r.type !== 'blackhole')
}

export const routeMissing: Check = (ctx) => [...perPeerMissing(ctx), ...clusterRouteMissing(ctx)]

function perPeerMissing(ctx: CheckContext): Raised[] {
  return raisedOver(expectedRoutes(ctx), (e) => {
    if (e.actual) return undefined
    // BIRD has it but the kernel does not: BGP_ROUTE_NOT_INSTALLED says so
    if (ctx.profile.bgp && birdBest(e.state, e.net)) return undefined
    const session = e.state.bird?.sessions.find((s) => s.neighborAddress === ctx.underlayIP(e.peer))
    const bgpNote =
      ctx.profile.bgp && session && session.bgpState !== 'Established'
        ? ` (the BGP session to ${e.peer.name} is ${session.bgpState})`
        : ''
    const covering = mainRoutes(ctx, e.state)
      .filter((r) => r.type === 'unicast' && contains(r.dst, e.net))
      .sort((a, b) => parsePrefix(b.dst)!.len - parsePrefix(a.dst)!.len)[0]
    return raise('ROUTE_MISSING', {
      node: e.node.name,
      peers: [e.peer.name],
      subject: `${e.net} (${e.peer.name})`,
      message: `${e.node.name} has no route for ${e.peer.name}'s pods ${e.net}${covering ? `; they would follow ${routeLine(covering)}` : ''}${bgpNote}`,
      evidence: covering ? [routeLine(covering)] : [`ip route show ${e.net}: (nothing)`],
      vars: {peer: e.peer.name, podCIDR: e.net, nexthop: e.gateway ?? '', dev: e.dev},
    })
  })
}

/** flannel udp: one route sends the whole pod network into flannel0. */
function clusterRouteMissing(ctx: CheckContext): Raised[] {
  if (ctx.profile.peerRoute !== 'cluster-tunnel' || !ctx.profile.tunnel) return []
  const dev = ctx.profile.tunnel.dev
  return ctx.examined().flatMap(({node, state}): Raised[] => {
    if (!ctx.ok(state, 'routes4', 'links') || !tunnelUsable(ctx, state)) return []
    const network = ctx.network(node.name)
    if (mainRoutes(ctx, state).some((r) => r.dev === dev && contains(r.dst, network))) return []
    const uncovered = ctx
      .peers(node.name)
      .filter((p) =>
        ctx.podNets(p).some((net) => !mainRoutes(ctx, state).some((r) => r.dev === dev && contains(r.dst, net))),
      )
    if (uncovered.length === 0) return []
    return [
      raise('ROUTE_MISSING', {
        node: node.name,
        peers: uncovered.map((p) => p.name),
        subject: `${network} dev ${dev}`,
        message: `${node.name} has no route sending the pod network ${network} into ${dev}: pods of ${uncovered.map((p) => p.name).join(', ')} are unreachable`,
        evidence: mainRoutes(ctx, state)
          .filter((r) => r.dev === dev)
          .map(routeLine),
        vars: {podCIDR: network, dev},
        fixTemplate: [
          `# flannel udp sends the whole pod network into ${dev}; flanneld adds it when it starts`,
          'ip route replace <podCIDR> dev <dev>',
        ].join('\n'),
      }),
    ]
  })
}

export const routeWrongNexthop: Check = (ctx) =>
  raisedOver(expectedRoutes(ctx), (e) => {
    const r = e.actual
    if (!r || r.type !== 'unicast') return undefined
    // asked once per peer: a route's single next hop is read off the route, no object made for it
    const via = (dev: string | undefined, gateway: string | undefined) =>
      dev === e.dev && (e.gateway === undefined || gateway === e.gateway)
    if (r.nexthops ? r.nexthops.some((nh) => via(nh.dev, nh.gateway)) : via(r.dev || undefined, r.gateway || undefined))
      return undefined
    // DirectRouting / CrossSubnet: an adjacent peer routed natively on purpose
    if (directlyRouted(ctx, e.node, e.state, e.peer)) return undefined
    const owner = r.gateway ? ctx.ownerOfIP(r.gateway) : undefined
    return raise('ROUTE_WRONG_NEXTHOP', {
      node: e.node.name,
      peers: [e.peer.name, ...(owner && owner !== e.peer.name ? [owner] : [])],
      subject: `${e.net} (${e.peer.name})`,
      message: `${e.node.name} routes ${e.peer.name}'s pods ${e.net} ${r.gateway ? `via ${r.gateway}${owner ? ` (${owner})` : ''} ` : ''}dev ${r.dev ?? '?'}; ${ctx.profile.name} sends them via ${e.gateway ?? '?'} dev ${e.dev}`,
      evidence: [routeLine(r)],
      vars: {podCIDR: e.net, nexthop: e.gateway ?? '', dev: e.dev},
    })
  })

export const routeStale: Check = (ctx) => {
  return ctx.examined().flatMap(({node, state}) => {
    if (!ctx.ok(state, 'routes4')) return []
    const network = ctx.network(node.name)
    const net = parsePrefix(network)
    const ix = ctx.index(state)
    const out: Raised[] = []
    ix.mainRoutes.forEach((r, at) => {
      if (r.type !== 'unicast' || r.protocol === 'kernel' || r.dst === network) return
      const p = ix.prefixAt(at)
      if (!net || !p || !prefixContains(net, p)) return
      // inside or around some node's subnet (a local pod's /32, an aggregate): not stale
      if (ctx.overlapsPodNet(r.dst)) return
      const neigh =
        r.gateway && r.dev
          ? state.neighbours.find((n) => n.dst === r.gateway && n.dev === r.dev && n.lladdr)
          : undefined
      const tunnel = ctx.profile.tunnel && r.dev === ctx.profile.tunnel.dev && r.gateway
      const vars = {
        podCIDR: r.dst,
        dev: r.dev ?? '',
        ...(tunnel ? {vtepIP: r.gateway!} : {}),
        ...(neigh?.lladdr && tunnel ? {staleMAC: neigh.lladdr} : {}),
      }
      out.push(
        raise('ROUTE_STALE', {
          node: node.name,
          subject: r.dst,
          message: `${node.name} still routes ${r.dst}, a pod subnet no node owns${r.gateway ? ` (via ${r.gateway})` : ''}`,
          evidence: [routeLine(r), ...(neigh ? [neighLine(neigh)] : [])],
          vars,
          without: [...(tunnel ? [] : ['vtepIP']), ...(neigh?.lladdr && tunnel ? [] : ['staleMAC'])],
        }),
      )
    })
    return out
  })
}

const DISCARD = new Set(['blackhole', 'unreachable', 'prohibit'])

export const blackholeRoute: Check = (ctx) => {
  const out: Raised[] = []
  for (const {node, state} of ctx.examined()) {
    if (!ctx.ok(state, 'routes4')) continue
    const ix = ctx.index(state)
    const main = ix.mainRoutes
    // a loop over the node's routes (one per peer), nothing made for the many that discard nothing
    main.forEach((r, at) => {
      if (!DISCARD.has(r.type)) return
      const len = ix.prefixAt(at)?.len
      // a peer subnet the discard route wins for: it is inside the subnet, or no unicast route as specific covers it
      const victims = ctx.podNetsOverlapping(r.dst).filter((o) => {
        if (o.node === node.name) return false
        if (contains(o.net, r.dst)) return true
        // the subnet parsed once per victim, each route's prefix once per state (the index)
        const op = parsePrefix(o.net)
        return !main.some((u, at) => {
          if (u.type !== 'unicast') return false
          const up = ix.prefixAt(at)
          return up !== undefined && op !== undefined && prefixContains(up, op) && up.len >= len!
        })
      })
      if (victims.length === 0) return
      out.push(
        raise('BLACKHOLE_ROUTE', {
          node: node.name,
          peers: [...new Set(victims.map((v) => v.node))],
          subject: `${r.type} ${r.dst}`,
          message: `${node.name} discards traffic to ${r.dst}, which covers pods of ${victims.map((v) => `${v.node} (${v.net})`).join(', ')}`,
          evidence: [routeLine(r)],
          vars: {podCIDR: r.dst},
        }),
      )
    })
  }
  return out
}

/**
 * host-gw across a router: one finding per pair of underlay subnets (not per
 * node pair, which grows as N²). Nodes are grouped by the subnets of their
 * uplink; each group is tested against every peer once, so the work is
 * groups × nodes and the output groups², both small however many nodes.
 */
export const hostgwNotL2Adjacent: Check = (ctx) => {
  if (ctx.profile.mode !== 'flannel-host-gw') return []
  interface Side {
    key: string
    nodes: SnapshotNode[]
    uplink?: string
  }
  // the sides come from every examined node's addresses (cluster facts); a side's findings are
  // raised with its first node, whose routes are the evidence (in a streamed run: when it is visited)
  const sideOf = ctx.memo('hostgwSides', () => {
    const sides = new Map<string, Side>()
    const sideOf = new Map<string, Side>()
    for (const {node, state} of ctx.everyExamined()) {
      if (!ctx.ok(state, 'addresses', 'links', 'routes4')) continue
      const key = ctx.uplinkSubnets(node, state).map(canonical).sort().join(', ')
      let side = sides.get(key)
      if (!side) sides.set(key, (side = {key, nodes: [], uplink: ctx.uplink(node, state)?.name}))
      side.nodes.push(node)
      sideOf.set(node.name, side)
    }
    return sideOf
  })
  const raised: Raised[] = []
  for (const {node: first, state} of ctx.examined()) {
    const side = sideOf.get(first.name)
    if (!side || side.nodes[0] !== first) continue
    const from = side
    // the peers none of this side's subnets holds, by the side they sit on (or their address, if never read)
    const away = new Map<string, SnapshotNode[]>()
    for (const peer of ctx.peers(first.name)) {
      if (sideOf.get(peer.name) === side || adjacent(ctx, first, state, ctx.underlayIP(peer))) continue
      const to = sideOf.get(peer.name)?.key ?? ctx.underlayIP(peer)
      away.set(to, [...(away.get(to) ?? []), peer])
    }
    for (const [to, peers] of away) {
      const peer = peers[0]!
      const peerIP = ctx.underlayIP(peer)
      const main = mainRoutes(ctx, state)
      const connected = main.filter((r) => r.dev === from.uplink && r.scope === 'link' && r.protocol === 'kernel')
      const toPeer = main
        .filter((r) => r.type === 'unicast' && contains(r.dst, peerIP))
        .sort((a, b) => parsePrefix(b.dst)!.len - parsePrefix(a.dst)!.len)[0]
      const podRoutes = main.filter((r) => ctx.podNets(peer).includes(r.dst))
      const here = from.nodes.map((n) => n.name)
      const there = peers.map((n) => `${n.name} (${ctx.underlayIP(n)})`)
      raised.push(
        raise('HOSTGW_NOT_L2_ADJACENT', {
          ...(here.length === 1 ? {node: first.name} : {}),
          peers: [...here, ...peers.map((n) => n.name)],
          subject: `${from.key || (from.uplink ?? 'uplink')} → ${to}`,
          message: `${someNames(there)} ${peers.length === 1 ? 'is' : 'are'} not on the subnet ${from.key} of ${someNames(here)}: host-gw cannot route ${peers.length === 1 ? 'its' : 'their'} pods through a router`,
          evidence: [...connected.map(routeLine), ...(toPeer ? [routeLine(toPeer)] : []), ...podRoutes.map(routeLine)],
          vars: {},
        }),
      )
    }
  }
  return raised
}
