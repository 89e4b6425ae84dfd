import type {Snapshot} from '../../model/snapshot.js'
import {ownedState, type RouteVia, routeVia} from './current.js'
import {desiredNode} from './desired.js'
import {diffLines, diffNode} from './diff.js'
import {kernelLines} from './lines.js'
import {
  BACKEND_TYPES,
  type ClusterFacts,
  type ConfiguredBackend,
  type Daemon,
  type Kind,
  KINDS,
  type NodeDesired,
  type NodeFacts,
} from './types.js'

/**
 * `backend get`: per node, what is programmed (the backend state it holds,
 * and how it routes to each peer) against what the configured backend says,
 * with every difference named. Pure.
 */

export interface PeerRoute {
  peer: string
  podCIDR: string
  via: RouteVia
  /** the route, as `ip route` prints it */
  route?: string
}

export interface NodeBackendView {
  node: string
  collected: boolean
  /** backends whose signature the node's routes carry (one when healthy) */
  programmed: string[]
  peers: PeerRoute[]
  state: Record<Kind, string[]>
  daemons: Daemon[]
  /** lines the configured backend wants and the node lacks, and lines it holds that do not belong */
  drift: {missing: Record<Kind, string[]>; unexpected: Record<Kind, string[]>}
}

export interface BackendView {
  cluster: {name: string; source: Snapshot['cluster']['source']; configured: ConfiguredBackend}
  nodes: NodeBackendView[]
  /** one line per drifting node, naming what is off */
  drift: string[]
  errors: Snapshot['errors']
}

/** How a route of each kind is said in a sentence. */
export const VIA_WORDS: Record<RouteVia, string> = {
  'flannel-vxlan': 'via flannel.1 (flannel-vxlan)',
  'flannel-host-gw': 'via the peer node over the uplink (flannel-host-gw)',
  'flannel-udp': 'via flannel0 (flannel-udp)',
  'calico-bgp': 'via the peer node, proto bird (calico-bgp)',
  'calico-vxlan': 'via vxlan.calico (calico-vxlan)',
  'calico-direct': 'via the peer node, proto 80 (calico CrossSubnet)',
  'calico-ipip': 'via tunl0 (calico-ipip)',
  none: 'with no route at all',
  other: 'by a route no backend writes',
}

/**
 * The backend a node's state is: the one whose whole desired state it holds
 * (the configured backend first); failing that, the backends its routes follow.
 */
function programmedOn(
  owned: NodeDesired,
  facts: ClusterFacts,
  node: NodeFacts,
  configured: ConfiguredBackend,
  peers: PeerRoute[],
): string[] {
  for (const type of [configured, ...BACKEND_TYPES.filter((t) => t !== configured)]) {
    const d = diffNode(owned, desiredNode(type, facts, node))
    if (KINDS.every((k) => d.kinds[k].add.length === 0 && d.kinds[k].remove.length === 0)) return [type]
  }
  const vias = new Set(
    peers
      .map((p) => (p.via === 'calico-direct' ? 'calico-vxlan-crosssubnet' : p.via))
      .filter((v) => v !== 'none' && v !== 'other'),
  )
  // CrossSubnet is direct routes and vxlan.calico routes together
  if (vias.has('calico-vxlan-crosssubnet')) vias.delete('calico-vxlan')
  return [...vias]
}

export function describeBackend(snapshot: Snapshot, facts: ClusterFacts, configured: ConfiguredBackend): BackendView {
  const drift: string[] = []
  const nodes = facts.nodes.map((n): NodeBackendView => {
    const state = snapshot.nodeStates[n.name]
    const desired = desiredNode(configured, facts, n)
    const peers = facts.nodes.filter((p) => p.name !== n.name)
    const emptyKinds = {links: [], addresses: [], routes: [], neighbours: [], fdb: []}
    if (!state)
      return {
        node: n.name,
        collected: false,
        programmed: [],
        peers: [],
        state: emptyKinds,
        daemons: [],
        drift: {missing: emptyKinds, unexpected: emptyKinds},
      }
    const owned = ownedState(state, facts)
    const peerRoutes: PeerRoute[] = peers.map((p) => {
      const {via, route} = routeVia(owned, n, p)
      return {
        peer: p.name,
        podCIDR: p.podCIDR,
        via,
        ...(route
          ? {route: kernelLines({links: [], addresses: [], routes: [route], neighbours: [], fdb: []}).routes[0]!}
          : {}),
      }
    })
    const lines = diffLines(diffNode(owned, desired))
    const missing = Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, v.add])) as Record<Kind, string[]>
    const unexpected = Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, v.remove])) as Record<
      Kind,
      string[]
    >
    const programmed = programmedOn(owned, facts, n, configured, peerRoutes)
    // name the drift: routes that follow another backend first, then what is left over or missing
    const expected = new Map(peers.map((p) => [p.name, routeVia(desired, n, p).via]))
    const wrong = peerRoutes.filter((p) => p.via !== expected.get(p.peer))
    const parts: string[] = []
    const byVia = new Map<RouteVia, string[]>()
    for (const p of wrong) byVia.set(p.via, [...(byVia.get(p.via) ?? []), p.peer])
    for (const [via, to] of byVia)
      parts.push(
        via === 'none'
          ? `has no route to the pods of ${to.join(', ')}`
          : `still routes ${VIA_WORDS[via]} to ${to.join(', ')}`,
      )
    // what the routes above do not already say: devices, neighbours, FDB entries (and routes, when none was named)
    const routesNamed = parts.length > 0
    const rest = (k: Record<Kind, string[]>): string[] =>
      Object.entries(k).flatMap(([kind, v]) => (kind === 'routes' && routesNamed ? [] : v))
    const leftover = rest(unexpected)
    const lacking = rest(missing)
    if (leftover.length > 0)
      parts.push(`holds ${leftover.length} line(s) that are not ${configured}'s (e.g. ${leftover[0]})`)
    if (lacking.length > 0) parts.push(`lacks ${lacking.length} line(s) of ${configured} (e.g. ${lacking[0]})`)
    const daemonsNow = owned.daemons
    const daemonGap = desired.daemons.filter((d) => !daemonsNow.includes(d))
    if (daemonGap.length > 0) parts.push(`is not running ${daemonGap.join(', ')}`)
    const extra = daemonsNow.filter((d) => !desired.daemons.includes(d))
    if (extra.length > 0) parts.push(`still runs ${extra.join(', ')}`)
    if (parts.length > 0) drift.push(`configured ${configured} but ${n.name} ${parts.join('; ')}`)
    return {
      node: n.name,
      collected: true,
      programmed,
      peers: peerRoutes,
      state: kernelLines(owned),
      daemons: owned.daemons,
      drift: {missing, unexpected},
    }
  })
  return {
    cluster: {name: snapshot.cluster.name, source: snapshot.cluster.source, configured},
    nodes,
    drift,
    errors: snapshot.errors,
  }
}
